"""Which principal Elastic Load Balancing uses to write access logs, per region.

Source: AWS documentation, "Enable access logs for your Application Load Balancer", step 2 "Attach a
policy to your S3 bucket" (the table of Elastic Load Balancing account ids per region), as collected in
the project's AWS facts. Regions that became available before August 2022 have a regional ELB account
that writes the log files; regions launched since then only accept the service principal
``logdelivery.elasticloadbalancing.amazonaws.com``, which AWS now recommends everywhere. Where both
exist the policy grants both, so delivery keeps working whichever one the region uses.
"""

from __future__ import annotations

LOG_DELIVERY_SERVICE_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"

ELB_ACCOUNT_IDS: dict[str, str] = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
}


def elb_account_id(region: str) -> str | None:
    """The regional ELB log-writer account, or None in regions that only use the service principal."""
    return ELB_ACCOUNT_IDS.get(region)
