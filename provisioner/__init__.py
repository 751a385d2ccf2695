"""Provisioner: the CloudFormation custom resource that wires ALB access logs to an SNS topic."""
