"""The Kinesis source's offset arithmetic: where each shard starts, continues and resumes.

Pure: shards are ListShards entries (`ShardId`, `ParentShardId`, `AdjacentParentShardId`),
offsets and positions the plain dicts `adapters.kinesis_source` stores (see its docstring).
"""

from __future__ import annotations

from typing import Any


def parents(shard: dict[str, Any]) -> list[str]:
    """The ids of a shard's parents (none, one, or two after a merge)."""
    return [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]


def initial_positions(
    shards: list[dict[str, Any]],
    *,
    starting_position: str,
    starting_timestamp_ms: int | None,
    now_ms: int,
) -> dict[str, dict[str, Any]]:
    """Starting positions: root shards (no parent still in the stream) at the start position."""
    if starting_position == "trim_horizon":
        start: dict[str, Any] = {"at": "TRIM_HORIZON"}
    elif starting_position == "latest":
        # pinned as a timestamp so a restart before the first commit reads the same records
        start = {"at_timestamp": now_ms}
    else:
        start = {"at_timestamp": starting_timestamp_ms}
    present = {s["ShardId"] for s in shards}
    return {s["ShardId"]: dict(start) for s in shards if not any(p in present for p in parents(s))}


def resume_state(current: dict[str, Any], boundaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where reading continues after the batch that read `boundaries` from offset `current`:
    `{"shards": {shard_id: position}, "finished": [...]}` (shards not yet started are absent)."""
    finished = set(current.get("finished", []))
    positions: dict[str, dict[str, Any]] = {}
    for shard_id, position in current["shards"].items():
        boundary = boundaries.get(shard_id, {})
        if boundary.get("closed"):
            finished.add(shard_id)
            continue
        last = boundary.get("last_seq")
        seen = [boundary.get("last_arrival_ms"), boundary.get("caught_up_ms")]
        seen_ms = max((int(v) for v in seen if v is not None), default=None)
        if last:
            positions[shard_id] = {"after": last, "seen_ms": seen_ms}
        elif "after" in position and seen_ms is not None:
            positions[shard_id] = {
                **position,
                "seen_ms": max(seen_ms, position.get("seen_ms") or 0),
            }
        else:
            positions[shard_id] = position
    return {"shards": positions, "finished": sorted(finished)}


def next_offset(
    current: dict[str, Any],
    boundaries: dict[str, dict[str, Any]],
    shards: list[dict[str, Any]],
    *,
    now_ms: int,
) -> dict[str, Any]:
    """Offset N+1 from offset N, the boundaries its batch recorded, and the stream's shards.

    Its read time `t` is `now_ms`, but never earlier than offset N's (a clock step back must
    not make a batch older than the one before it)."""
    state = resume_state(current, boundaries)
    finished, positions = set(state["finished"]), state["shards"]
    present = {s["ShardId"] for s in shards}
    for shard in shards:
        shard_id = shard["ShardId"]
        if shard_id in positions or shard_id in finished:
            continue
        if all(p in finished or p not in present for p in parents(shard)):
            positions[shard_id] = {"at": "TRIM_HORIZON"}
    # forget finished shards that the stream no longer lists (past retention)
    finished &= present | set(positions)
    return {
        "n": current["n"] + 1,
        "t": max(now_ms, int(current.get("t", 0)) + 1),
        "shards": positions,
        "finished": sorted(finished),
    }
