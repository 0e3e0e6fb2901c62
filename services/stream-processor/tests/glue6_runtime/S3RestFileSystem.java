// A test stand-in for the s3:// file system that AWS Glue gives Spark (EMRFS), so a Spark
// checkpoint at s3://bucket/prefix lives in moto's S3 as it lives in S3 on Glue. Not AWS code.
//
// Objects are read and written through S3's REST API (path-style URLs on the endpoint in
// fs.s3.endpoint). moto does not verify signatures but treats a request without credentials as
// anonymous, which a private object refuses (403), so each request names the access key in an
// unsigned SigV4 Authorization header (AWS_ACCESS_KEY_ID, as botocore would send). Directories are
// key prefixes, with an empty "prefix/" marker object for mkdirs, as Hadoop's S3A does.
// rename is copy + delete, which is not atomic: Spark then uses its FileSystem-based checkpoint
// manager, which writes a temporary file and renames it only if the target does not exist.
// Compiled by tests/glue6_env.py against the Hadoop client API jar pyspark ships.

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSInputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public class S3RestFileSystem extends FileSystem {
  private final HttpClient http = HttpClient.newHttpClient();
  private URI uri;
  private String endpoint;
  private String authorization;
  private Path workingDir;

  @Override
  public void initialize(URI name, Configuration conf) throws IOException {
    super.initialize(name, conf);
    uri = URI.create(name.getScheme() + "://" + name.getAuthority());
    endpoint = conf.get("fs.s3.endpoint");
    if (endpoint == null) {
      throw new IOException("fs.s3.endpoint is not set");
    }
    endpoint = endpoint.replaceAll("/+$", "");
    String accessKey = System.getenv().getOrDefault("AWS_ACCESS_KEY_ID", "testing");
    String day = java.time.LocalDate.now(java.time.ZoneOffset.UTC).toString().replace("-", "");
    authorization = "AWS4-HMAC-SHA256 Credential=" + accessKey + "/" + day
        + "/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=unsigned";
    workingDir = new Path(uri.toString() + "/");
  }

  @Override
  public String getScheme() {
    return "s3";
  }

  @Override
  public URI getUri() {
    return uri;
  }

  private String bucket() {
    return uri.getAuthority();
  }

  private String key(Path path) {
    Path qualified = path.isAbsolute() ? path : new Path(workingDir, path);
    return qualified.toUri().getPath().replaceAll("^/+", "");
  }

  private static String encode(String value) {
    return URLEncoder.encode(value, StandardCharsets.UTF_8).replace("+", "%20");
  }

  private URI objectUri(String key) {
    StringBuilder url = new StringBuilder(endpoint).append('/').append(bucket()).append('/');
    String[] parts = key.split("/", -1);
    for (int i = 0; i < parts.length; i++) {
      url.append(i == 0 ? "" : "/").append(encode(parts[i]));
    }
    return URI.create(url.toString());
  }

  private HttpResponse<byte[]> send(HttpRequest.Builder request) throws IOException {
    try {
      request.header("Authorization", authorization);
      return http.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new java.io.InterruptedIOException("interrupted: " + e.getMessage());
    }
  }

  private static void check(HttpResponse<byte[]> response, String what) throws IOException {
    if (response.statusCode() / 100 != 2) {
      throw new IOException(
          what + ": HTTP " + response.statusCode() + " "
              + new String(response.body(), StandardCharsets.UTF_8));
    }
  }

  private byte[] get(String key) throws IOException {
    HttpResponse<byte[]> response = send(HttpRequest.newBuilder(objectUri(key)).GET());
    if (response.statusCode() == 404) {
      throw new FileNotFoundException("s3://" + bucket() + "/" + key);
    }
    check(response, "GET " + key);
    return response.body();
  }

  private void put(String key, byte[] data) throws IOException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(objectUri(key)).PUT(HttpRequest.BodyPublishers.ofByteArray(data));
    check(send(request), "PUT " + key);
  }

  private void deleteKey(String key) throws IOException {
    check(send(HttpRequest.newBuilder(objectUri(key)).DELETE()), "DELETE " + key);
  }

  /** Size and modification time of an object, or null when there is none. */
  private long[] head(String key) throws IOException {
    HttpResponse<byte[]> response =
        send(HttpRequest.newBuilder(objectUri(key)).method("HEAD", HttpRequest.BodyPublishers.noBody()));
    if (response.statusCode() == 404) {
      return null;
    }
    check(response, "HEAD " + key);
    long size = response.headers().firstValueAsLong("Content-Length").orElse(0L);
    long modified =
        response.headers().firstValue("Last-Modified")
            .map(v -> java.time.ZonedDateTime.parse(v, java.time.format.DateTimeFormatter.RFC_1123_DATE_TIME)
                .toInstant().toEpochMilli())
            .orElse(0L);
    return new long[] {size, modified};
  }

  /** One ListObjectsV2 listing (every page): [files as {key, size, mtime}], [common prefixes]. */
  private List<List<String[]>> list(String prefix, boolean delimited, int maxKeys) throws IOException {
    List<String[]> files = new ArrayList<>();
    List<String[]> prefixes = new ArrayList<>();
    String token = null;
    do {
      StringBuilder url = new StringBuilder(endpoint).append('/').append(bucket())
          .append("?list-type=2&prefix=").append(encode(prefix));
      if (delimited) {
        url.append("&delimiter=%2F");
      }
      if (maxKeys > 0) {
        url.append("&max-keys=").append(maxKeys);
      }
      if (token != null) {
        url.append("&continuation-token=").append(encode(token));
      }
      HttpResponse<byte[]> response = send(HttpRequest.newBuilder(URI.create(url.toString())).GET());
      if (response.statusCode() == 404) {
        throw new FileNotFoundException("no bucket " + bucket());
      }
      check(response, "LIST " + prefix);
      Document doc;
      try {
        doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
            .parse(new ByteArrayInputStream(response.body()));
      } catch (Exception e) {
        throw new IOException("bad listing of " + prefix, e);
      }
      NodeList contents = doc.getElementsByTagName("Contents");
      for (int i = 0; i < contents.getLength(); i++) {
        Element item = (Element) contents.item(i);
        files.add(new String[] {text(item, "Key"), text(item, "Size"), text(item, "LastModified")});
      }
      NodeList common = doc.getElementsByTagName("CommonPrefixes");
      for (int i = 0; i < common.getLength(); i++) {
        prefixes.add(new String[] {text((Element) common.item(i), "Prefix")});
      }
      token = "true".equals(text(doc.getDocumentElement(), "IsTruncated"))
          ? text(doc.getDocumentElement(), "NextContinuationToken") : null;
    } while (token != null && maxKeys <= 0);
    List<List<String[]>> result = new ArrayList<>();
    result.add(files);
    result.add(prefixes);
    return result;
  }

  private static String text(Element parent, String tag) {
    NodeList nodes = parent.getElementsByTagName(tag);
    return nodes.getLength() == 0 ? null : nodes.item(0).getTextContent();
  }

  private Path pathOf(String key) {
    return new Path(uri.toString() + "/" + key);
  }

  private FileStatus fileStatus(String key, long size, long modified) {
    return new FileStatus(size, false, 1, 64 * 1024 * 1024, modified, pathOf(key));
  }

  private FileStatus dirStatus(String key) {
    return new FileStatus(0, true, 1, 0, 0, pathOf(key.replaceAll("/+$", "")));
  }

  @Override
  public FileStatus getFileStatus(Path path) throws IOException {
    String key = key(path);
    if (key.isEmpty()) {
      return dirStatus("");
    }
    long[] object = head(key);
    if (object != null) {
      return fileStatus(key, object[0], object[1]);
    }
    List<List<String[]>> found = list(key + "/", false, 1);
    if (!found.get(0).isEmpty() || !found.get(1).isEmpty()) {
      return dirStatus(key);
    }
    throw new FileNotFoundException(path.toString());
  }

  @Override
  public FileStatus[] listStatus(Path path) throws IOException {
    FileStatus status = getFileStatus(path);
    if (!status.isDirectory()) {
      return new FileStatus[] {status};
    }
    String key = key(path);
    String prefix = key.isEmpty() ? "" : key + "/";
    List<List<String[]>> found = list(prefix, true, 0);
    List<FileStatus> result = new ArrayList<>();
    for (String[] file : found.get(0)) {
      if (!file[0].equals(prefix)) { // the directory's own marker
        result.add(fileStatus(file[0], Long.parseLong(file[1]), Instant.parse(file[2]).toEpochMilli()));
      }
    }
    for (String[] dir : found.get(1)) {
      result.add(dirStatus(dir[0]));
    }
    return result.toArray(new FileStatus[0]);
  }

  @Override
  public boolean mkdirs(Path path, FsPermission permission) throws IOException {
    String key = key(path);
    if (!key.isEmpty()) {
      try {
        if (getFileStatus(path).isFile()) {
          throw new FileAlreadyExistsException("a file exists at " + path);
        }
      } catch (FileNotFoundException e) {
        put(key + "/", new byte[0]);
      }
    }
    return true;
  }

  @Override
  public FSDataInputStream open(Path path, int bufferSize) throws IOException {
    return new FSDataInputStream(new BytesInputStream(get(key(path))));
  }

  @Override
  public FSDataOutputStream create(
      Path path, FsPermission permission, boolean overwrite, int bufferSize, short replication,
      long blockSize, Progressable progress) throws IOException {
    String key = key(path);
    if (!overwrite && exists(path)) {
      throw new FileAlreadyExistsException(path + " already exists");
    }
    ByteArrayOutputStream buffer = new ByteArrayOutputStream() {
      private boolean closed;

      @Override
      public void close() throws IOException {
        if (!closed) {
          closed = true;
          put(key, toByteArray());
        }
      }
    };
    return new FSDataOutputStream(buffer, statistics);
  }

  @Override
  public FSDataOutputStream append(Path path, int bufferSize, Progressable progress) throws IOException {
    throw new UnsupportedOperationException("append is not supported on s3://");
  }

  private FileStatus statusOrNull(Path path) throws IOException {
    try {
      return getFileStatus(path);
    } catch (FileNotFoundException e) {
      return null;
    }
  }

  @Override
  public boolean rename(Path src, Path dst) throws IOException {
    FileStatus from = statusOrNull(src);
    if (from == null || exists(dst)) {
      return false;
    }
    String source = key(src);
    String target = key(dst);
    if (from.isFile()) {
      put(target, get(source));
      deleteKey(source);
      return true;
    }
    for (String[] file : list(source + "/", false, 0).get(0)) {
      put(target + file[0].substring(source.length()), get(file[0]));
      deleteKey(file[0]);
    }
    return true;
  }

  @Override
  public boolean delete(Path path, boolean recursive) throws IOException {
    FileStatus status = statusOrNull(path);
    if (status == null) {
      return false;
    }
    String key = key(path);
    if (status.isFile()) {
      deleteKey(key);
      return true;
    }
    List<String[]> files = list(key.isEmpty() ? "" : key + "/", false, 0).get(0);
    if (!recursive && files.stream().anyMatch(f -> !f[0].equals(key + "/"))) {
      throw new IOException(path + " is not empty");
    }
    for (String[] file : files) {
      deleteKey(file[0]);
    }
    return true;
  }

  @Override
  public void setWorkingDirectory(Path dir) {
    workingDir = dir;
  }

  @Override
  public Path getWorkingDirectory() {
    return workingDir;
  }

  /** An object's bytes as a seekable Hadoop input stream. */
  private static final class BytesInputStream extends FSInputStream {
    private final byte[] data;
    private int pos;

    BytesInputStream(byte[] data) {
      this.data = data;
    }

    @Override
    public void seek(long target) throws IOException {
      if (target < 0 || target > data.length) {
        throw new EOFException("seek to " + target + " of " + data.length);
      }
      pos = (int) target;
    }

    @Override
    public long getPos() {
      return pos;
    }

    @Override
    public boolean seekToNewSource(long target) {
      return false;
    }

    @Override
    public int read() {
      return pos < data.length ? data[pos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] buffer, int offset, int length) {
      if (length == 0) {
        return 0;
      }
      if (pos >= data.length) {
        return -1;
      }
      int n = Math.min(length, data.length - pos);
      System.arraycopy(data, pos, buffer, offset, n);
      pos += n;
      return n;
    }

    @Override
    public int available() {
      return data.length - pos;
    }
  }
}
