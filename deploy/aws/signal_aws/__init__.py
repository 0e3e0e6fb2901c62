"""Signal Stream on AWS: the CDK app (`signal_aws.cdk_app`) and its stacks."""
