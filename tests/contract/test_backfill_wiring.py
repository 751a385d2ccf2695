"""replay --via-lambda <-> the template: the outputs and parameters it reads, and the files it warns of."""

from __future__ import annotations

import pytest

from forwarder import backfill
from forwarder.backfill import StackSettings

from .template_model import ACCOUNT, allows, load_template
from .test_iam import ENDPOINT, make_stack


def test_the_outputs_and_parameters_it_reads_are_the_templates() -> None:
    template = load_template()
    for output in (
        backfill.WORK_QUEUE_OUTPUT,
        backfill.DEAD_LETTER_QUEUE_OUTPUT,
        backfill.FUNCTION_OUTPUT,
        backfill.BUCKET_OUTPUT,
        backfill.PREFIX_OUTPUT,
    ):
        assert output in template["Outputs"], output
    parameters = template["Parameters"]
    # Without --stack, the estimate assumes a stack with the defaults.
    assert int(parameters[backfill.CONCURRENCY_PARAMETER]["Default"]) == backfill.DEFAULT_CONCURRENCY
    assert int(parameters[backfill.MEMORY_PARAMETER]["Default"]) == backfill.DEFAULT_MEMORY_MB
    assert int(parameters[backfill.TIMEOUT_PARAMETER]["Default"]) == backfill.DEFAULT_TIMEOUT_SECONDS
    # The outputs it needs exist only with a forwarder, which IngestEndpoint decides.
    assert template["Conditions"]["HasForwarder"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": backfill.ENDPOINT_PARAMETER}, ""]}]
    }
    for output in (backfill.WORK_QUEUE_OUTPUT, backfill.FUNCTION_OUTPUT):
        assert template["Outputs"][output]["Condition"] == "HasForwarder"


@pytest.mark.parametrize("prefix", ["", "prod/web"])
def test_the_files_it_warns_of_are_the_ones_the_forwarder_role_may_not_read(prefix: str) -> None:
    s = make_stack(bucket="logs-bkt", prefix=prefix, IngestEndpoint=ENDPOINT)
    statements = s.role_statements("ForwarderRole")
    settings = StackSettings(s.stack_name, {"LogBucketName": "logs-bkt", "LogPrefix": prefix}, {}, ACCOUNT)
    readable = settings.readable_prefix()
    assert readable is not None
    bucket, key_prefix = readable
    base = f"{prefix}/" if prefix else ""
    for key in (
        f"{base}AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2025/01/31/x.log.gz",
        f"{base}AWSLogs/999988887777/elasticloadbalancing/us-east-1/2025/01/31/x.log.gz",
        f"{base}exports/x.log.gz",
        "other/x.log.gz",
    ):
        may_read = allows(statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
        assert may_read == key.startswith(key_prefix), key
