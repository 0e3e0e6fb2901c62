"""Signal Stream on AWS: the CDK app (`signal_aws.app`) and its stacks."""
