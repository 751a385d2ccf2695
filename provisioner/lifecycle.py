"""Create, update and delete orchestration: validate read-only first, then change, undo on failure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from provisioner import bucket as bucket_mod
from provisioner import bucket_policy, load_balancer, notifications, subscriptions, topic
from provisioner.arns import ArnError, Environment, FunctionArn, parse_function_arn, stack_name, topic_arn
from provisioner.clients import Clients
from provisioner.deadline import Deadline
from provisioner.errors import (
    PreconditionError,
    ProvisionError,
    StepError,
    describe_aws_error,
    error_code,
    show,
)
from provisioner.journal import UndoJournal
from provisioner.lambda_permission import allow_log_group, allow_topic, revoke
from provisioner.logs import log_event
from provisioner.naming import (
    LOG_OWNER_GEN_TAG_KEY,
    STACK_TAG_KEY,
    default_bucket_name,
    delivery_account_sid,
    delivery_sid,
    log_group_permission_sid,
    log_key_prefix,
    make_gen,
    permission_sid,
    policy_sids,
    rule_gen,
    rule_id,
    sid_gen,
    subscription_filter_name,
    tls_sid,
    topic_name,
)
from provisioner.properties import (
    BUCKET_NAME,
    LOAD_BALANCER_ARN,
    Properties,
    lenient_properties,
    parse_properties,
    prefix_problem,
    property_text,
    unknown_keys,
)
from provisioner.state import (
    SOURCE_ALB,
    SOURCE_DEFAULT,
    SOURCE_NAMED,
    AccessLogSettings,
    Record,
    decode,
    encode,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
PhysicalIdSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks: the stack, the request and where the provisioner runs."""

    stack_id: str
    request_id: str
    logical_id: str
    env: Environment


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer for CloudFormation."""

    physical_id: str
    data: dict[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything decided by the read-only checks, before anything changes."""

    props: Properties
    record: Record
    prefix: str
    key_prefix: str
    topic_name: str
    topic_arn: str
    replace_rule_ids: tuple[str, ...]

    def data(self) -> dict[str, str]:
        """The Data keys the template reads."""
        return {"BucketName": self.record.bucket, "Prefix": self.prefix, "TopicArn": self.topic_arn}


class _Steps:
    """Runs named steps: reports progress, checks the deadline, turns AWS errors into StepError."""

    def __init__(self, deadline: Deadline, progress: Progress) -> None:
        self.deadline = deadline
        self.progress = progress

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.progress(name)
        self.deadline.check(name)
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise StepError(name, describe_aws_error(exc)) from exc


def effective_prefix(prefix_property: str, record: Record) -> str:
    """The prefix in use: the property, else the load balancer's own prefix when we reused its bucket."""
    if prefix_property:
        return prefix_property
    if record.bucket_source == SOURCE_ALB:
        return record.previous_logging.prefix
    return ""


# ---------------------------------------------------------------------------------------------- plan


def _plan(
    clients: Clients,
    *,
    ctx: RequestContext,
    props: Properties,
    gen: str,
    steps: _Steps,
    replacing: Record | None,
) -> Plan:
    env = ctx.env
    lb_arn = props.load_balancer.arn
    with steps.step("check the load balancer"):
        load_balancer.require_application(clients.elbv2, lb_arn, env.account, env.region)
        live = load_balancer.read_access_logs(clients.elbv2, lb_arn)
        _refuse_if_owned_elsewhere(clients, ctx, lb_arn, live)

    # A replacement on the same load balancer inherits what was there before the OLD resource: the live
    # attributes now point at the old resource's bucket, and restoring those later would be wrong.
    inherited = replacing is not None and replacing.prepared and replacing.load_balancer_arn == lb_arn
    previous = replacing.previous_logging if replacing is not None and inherited else live

    if props.bucket_name:
        bucket, source = props.bucket_name, SOURCE_NAMED
    elif previous.enabled and previous.bucket:
        bucket, source = previous.bucket, SOURCE_ALB
    else:
        bucket, source = default_bucket_name(env.account, env.region, ctx.stack_id), SOURCE_DEFAULT

    with steps.step("check the bucket"):
        region = bucket_mod.bucket_region(clients.s3, bucket, env.account)
        if region is None and source == SOURCE_ALB:
            log_event(logger, "alb_bucket_missing", logging.WARNING, bucket=bucket)
            bucket, source = default_bucket_name(env.account, env.region, ctx.stack_id), SOURCE_DEFAULT
            region = bucket_mod.bucket_region(clients.s3, bucket, env.account)
        current_policy: bucket_policy.Policy | None = None
        if region is None:
            created, config = True, {}
        else:
            if region != env.region:
                raise PreconditionError(
                    f"bucket {show(bucket)} is in region {region} but the load balancer is in {env.region}; "
                    f"ALB delivers access logs only to a bucket in its own region: choose a bucket in "
                    f"{env.region} or leave BucketName empty so the stack creates one"
                )
            bucket_mod.check_encryption(clients.s3, bucket)
            # A bucket this stack created earlier (e.g. the default bucket kept across a replacement)
            # stays the stack's bucket; anything else is the user's and is never deleted.
            created = bucket_mod.carries_stack_tag(clients.s3, bucket, ctx.stack_id)
            current_policy = bucket_policy.read(clients.s3, bucket)
            config = notifications.read(clients.s3, bucket)

    record = Record(
        gen=gen,
        load_balancer_arn=lb_arn,
        bucket=bucket,
        bucket_source=source,
        bucket_created=created,
        policy_existed=current_policy is not None,
        previous_logging=previous,
        predecessor=replace(replacing, predecessor=None)
        if replacing is not None and replacing.prepared
        else None,
    )
    prefix = effective_prefix(props.prefix, record)
    if source == SOURCE_ALB and not props.prefix:
        problem = prefix_problem(prefix, "the load balancer's current log prefix")
        if problem:
            raise PreconditionError(f"{problem}; set Prefix to use another one")
    key_prefix = log_key_prefix(prefix, env.account)
    replace_ids = (rule_id(gen),) + ((rule_id(replacing.gen),) if replacing is not None else ())
    conflicts = notifications.find_conflicts(config, key_prefix, replace_ids)
    if conflicts:
        raise PreconditionError(notifications.conflict_reason(conflicts, bucket, key_prefix))
    _check_log_groups(clients, env, props, gen, steps)
    # Refuse now, not half-way, if our statements would push the policy over S3's size limit.
    bucket_policy.serialise(bucket_policy.merge(current_policy, _statements(env, record, props, prefix), ()))
    name = topic_name(stack_name(ctx.stack_id), gen)
    return Plan(
        props=props,
        record=record,
        prefix=prefix,
        key_prefix=key_prefix,
        topic_name=name,
        topic_arn=topic_arn(env, name),
        replace_rule_ids=replace_ids,
    )


def _check_log_groups(clients: Clients, env: Environment, props: Properties, gen: str, steps: _Steps) -> None:
    """Every log group in LogGroupNames exists here and has room for our subscription filter."""
    for log_group in props.log_groups:
        with steps.step(f"check log group {show(log_group)}"):
            subscriptions.check(clients.logs, env, log_group, subscription_filter_name(gen))


_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled"})


def _refuse_if_owned_elsewhere(
    clients: Clients, ctx: RequestContext, lb_arn: str, live: AccessLogSettings
) -> None:
    """Fail before any change when another stack of this project still sends this load balancer's logs."""
    owner = load_balancer.read_owner(clients.elbv2, lb_arn)
    if owner is None or owner.stack_id == ctx.stack_id:
        return
    if not (live.enabled and _delivers_to(clients.s3, live.bucket, owner.gen)):
        # The tags are stale: logging was turned off or pointed at a bucket that stack never set up.
        log_event(
            logger,
            "stale_load_balancer_owner_ignored",
            logging.WARNING,
            stack_id=owner.stack_id,
            gen=owner.gen,
            bucket=live.bucket,
        )
        return
    other = stack_name(owner.stack_id)
    raise PreconditionError(
        f"load balancer {show(lb_arn)} already sends its access logs to bucket {show(live.bucket)} for stack "
        f"{show(other)} ({show(owner.stack_id)}); a load balancer has one access log destination, so this "
        f"stack would take it away from that one. Delete stack {show(other)} first (its Delete puts the "
        f"earlier settings back), or change that stack's parameters instead of adding a second stack for "
        f"this load balancer. If that stack no longer exists, remove the tags {STACK_TAG_KEY} and "
        f"{LOG_OWNER_GEN_TAG_KEY} from the load balancer and retry"
    )


def _delivers_to(s3: Any, bucket: str, gen: str) -> bool:
    """Whether the bucket's policy still holds that generation's log delivery statements."""
    if not bucket:
        return False
    try:
        policy = bucket_policy.read(s3, bucket)
    except ClientError as exc:
        if bucket_mod.is_missing(exc):
            return False
        if error_code(exc) in _DENIED:
            return True  # a bucket we may not read: assume it still does
        raise
    return bool(bucket_policy.sids_in(policy) & {delivery_sid(gen), delivery_account_sid(gen)})


def _statements(env: Environment, record: Record, props: Properties, prefix: str) -> list[dict[str, Any]]:
    statements = bucket_policy.log_delivery_statements(
        partition=env.partition,
        region=env.region,
        bucket=record.bucket,
        prefix=prefix,
        account=env.account,
        gen=record.gen,
    )
    if props.reader_principal_arn:
        statements += bucket_policy.reader_statements(
            partition=env.partition,
            bucket=record.bucket,
            prefix=prefix,
            account=env.account,
            reader_arn=props.reader_principal_arn,
            gen=record.gen,
        )
    if record.bucket_created:
        statements.append(bucket_policy.tls_only_statement(env.partition, record.bucket, record.gen))
    return statements


# --------------------------------------------------------------------------------------------- apply


def _apply(
    clients: Clients, ctx: RequestContext, plan: Plan, steps: _Steps, journal: UndoJournal | None
) -> None:
    """Make the account match the plan. Every step is idempotent, so an in-place update re-runs it."""
    env, record, props = ctx.env, plan.record, plan.props
    s3, bucket = clients.s3, record.bucket

    def undo(description: str, action: Callable[[], object]) -> None:
        if journal is not None:
            journal.add(description, action)

    if record.bucket_created:
        with steps.step("create the bucket"):
            if not bucket_mod.exists(s3, bucket):
                bucket_mod.create(s3, bucket, env.region)
                undo(
                    "delete the bucket", lambda: bucket_mod.empty_and_delete(s3, bucket, Deadline.unlimited())
                )
                with steps.step("tag the bucket"):
                    bucket_mod.tag(s3, bucket, ctx.stack_id)
                with steps.step("block public access to the bucket"):
                    bucket_mod.block_public_access(s3, bucket)
                with steps.step("set the bucket's default encryption (SSE-S3)"):
                    bucket_mod.encrypt_sse_s3(s3, bucket)
        with steps.step("set the bucket's expiry rule"):
            bucket_mod.set_expiry(s3, bucket, props.log_retention_days)

    statements = _statements(env, record, props, plan.prefix)
    with steps.step("merge the bucket policy"):
        bucket_policy.add_statements(
            s3,
            bucket,
            statements,
            policy_sids(record.gen),
            before_first_write=lambda: undo(
                "remove our bucket policy statements",
                lambda: _remove_statements(s3, bucket, record.gen, False),
            ),
        )

    with steps.step("create the topic"):
        created_arn = topic.create(clients.sns, plan.topic_name)
        undo("delete the topic", lambda: topic.delete(clients.sns, created_arn))
    with steps.step("set the topic policy"):
        topic.set_policy(
            clients.sns, created_arn, topic.publish_policy(env.partition, created_arn, bucket, env.account)
        )

    desired: list[tuple[str, str]] = []
    if props.forwarder is not None:
        forwarder = props.forwarder
        with steps.step("allow the topic to invoke the forwarder"):
            allow_topic(
                clients.lambda_,
                forwarder,
                permission_sid(record.gen),
                created_arn,
                replace=journal is None,
            )
            undo(
                "remove the forwarder's invoke permission",
                lambda: revoke(clients.lambda_, forwarder, permission_sid(record.gen)),
            )
        desired.append(("lambda", forwarder.arn))
    if props.subscription_endpoint:
        desired.append(("https", props.subscription_endpoint))
    with steps.step("subscribe the forwarder and endpoint to the topic"):
        topic.converge_subscriptions(clients.sns, created_arn, desired)
    if props.forwarder is not None:
        _subscribe_log_groups(
            clients,
            env=env,
            gen=record.gen,
            props=props,
            forwarder=props.forwarder,
            steps=steps,
            undo=undo,
            replace=journal is None,
        )

    with steps.step("add the bucket notification rule"):
        config = notifications.read(s3, bucket)
        conflicts = notifications.find_conflicts(config, plan.key_prefix, plan.replace_rule_ids)
        if conflicts:  # someone added a rule since the checks ran
            raise PreconditionError(notifications.conflict_reason(conflicts, bucket, plan.key_prefix))
        ours = notifications.our_rule(rule_id(record.gen), created_arn, plan.key_prefix)
        displaced = [
            r
            for r in notifications.rules(config)
            if r.get("Id") in plan.replace_rule_ids and r.get("Id") != ours["Id"]
        ]
        notifications.add_rule(
            s3,
            bucket,
            ours,
            plan.replace_rule_ids,
            steps.deadline,
            before_first_write=lambda: undo(
                "remove our notification rule",
                lambda: notifications.restore_rules(
                    s3,
                    bucket,
                    before=config,
                    rule=ours,
                    replace_ids=plan.replace_rule_ids,
                    displaced=displaced,
                ),
            ),
        )

    lb_arn = record.load_balancer_arn
    with steps.step("tag the load balancer"):
        # Before logging changes: a Delete recognises the settings as ours only under our tags.
        claimed = load_balancer.read_owner(clients.elbv2, lb_arn)
        mine = load_balancer.LogOwner(stack_id=ctx.stack_id, gen=record.gen)
        if claimed != mine:
            load_balancer.write_owner(clients.elbv2, lb_arn, mine)
            undo(
                "restore the load balancer's tags",
                lambda: load_balancer.write_owner(clients.elbv2, lb_arn, claimed),
            )

    with steps.step("enable access logs on the load balancer"):
        current = load_balancer.read_access_logs(clients.elbv2, lb_arn)
        wanted = AccessLogSettings(enabled=True, bucket=bucket, prefix=plan.prefix)
        if current != wanted:
            load_balancer.enable_access_logs(clients.elbv2, lb_arn, wanted, steps.deadline)
            undo(
                "restore the load balancer's access log settings",
                lambda: load_balancer.write_access_logs(clients.elbv2, lb_arn, current),
            )

    # A writer that read the bucket before our change and wrote after our read-back dropped it unseen;
    # such a write has landed by now (the steps since took seconds): look once more.
    with steps.step("check that the bucket policy and notification rule are still in place"):
        bucket_policy.add_statements(s3, bucket, statements, policy_sids(record.gen), only_if_missing=True)
        notifications.add_rule(s3, bucket, ours, plan.replace_rule_ids, steps.deadline, only_if_missing=True)


def _subscribe_log_groups(
    clients: Clients,
    *,
    env: Environment,
    gen: str,
    props: Properties,
    forwarder: FunctionArn,
    steps: _Steps,
    undo: Callable[[str, Callable[[], object]], None],
    replace: bool,
) -> None:
    """Let each log group invoke the forwarder, then put our subscription filter on it.

    With `replace` (in-place updates), our statements are re-created as specified.
    """
    name = subscription_filter_name(gen)
    for log_group in props.log_groups:
        sid = log_group_permission_sid(gen, log_group)
        with steps.step(f"allow log group {show(log_group)} to invoke the forwarder"):
            allow_log_group(
                clients.lambda_,
                forwarder,
                sid,
                subscriptions.log_group_arn(env, log_group),
                env.account,
                replace=replace,
            )
            undo(
                f"remove log group {show(log_group)}'s invoke permission",
                partial(revoke, clients.lambda_, forwarder, sid),
            )
        with steps.step(f"subscribe the forwarder to log group {show(log_group)}"):
            subscriptions.put(
                clients.logs,
                log_group,
                name=name,
                pattern=props.filter_pattern,
                destination_arn=forwarder.arn,
                deadline=steps.deadline,
            )
            undo(
                f"remove the subscription filter from log group {show(log_group)}",
                partial(subscriptions.delete, clients.logs, log_group, name),
            )


def _remove_statements(s3: Any, bucket: str, gen: str, keep_tls: bool) -> bool:
    """Remove our Sids from the bucket policy; False when there was nothing to remove."""
    sids = set(policy_sids(gen))
    if keep_tls:
        sids.discard(tls_sid(gen))
    return bucket_policy.remove_statements(s3, bucket, sids)


# -------------------------------------------------------------------------------------------- create


def create(
    clients: Clients,
    ctx: RequestContext,
    *,
    raw_props: Mapping[str, Any],
    deadline: Deadline,
    on_physical_id: PhysicalIdSink,
    progress: Progress,
    replacing: Record | None = None,
) -> Outcome:
    """Create (or, with `replacing`, replace): validate everything, then change with an undo journal."""
    # CloudFormation creates (or, on a stack update, updates) our role just before this request.
    clients.iam_propagation.open(deadline)
    gen = make_gen(ctx.stack_id, ctx.logical_id, ctx.request_id)
    if replacing is None:
        # Answer with a parseable id even if validation fails, so the rollback Delete recognises it.
        on_physical_id(encode(Record(gen=gen)))
    extra = unknown_keys(raw_props)
    if extra:
        log_event(logger, "unknown_properties_ignored", logging.WARNING, keys=extra)
    steps = _Steps(deadline, progress)
    props = parse_properties(raw_props, ctx.env)
    plan = _plan(clients, ctx=ctx, props=props, gen=gen, steps=steps, replacing=replacing)
    physical_id = encode(plan.record)
    if replacing is None:
        on_physical_id(physical_id)
    log_event(
        logger,
        "plan",
        gen=gen,
        bucket=plan.record.bucket,
        bucket_source=plan.record.bucket_source,
        bucket_created=plan.record.bucket_created,
        prefix=plan.prefix,
        replacing=replacing.gen if replacing is not None else "",
    )
    journal = UndoJournal()
    try:
        _apply(clients, ctx, plan, steps, journal)
    except Exception as exc:
        steps.progress("undo")
        failures = journal.rollback()
        reason = str(exc) if isinstance(exc, ProvisionError) else describe_aws_error(exc)
        if failures:
            reason += (
                f". Undo was incomplete ({'; '.join(failures)}); the stack's rollback will retry the cleanup"
            )
        else:
            reason += ". Every change this request made was undone"
        raise ProvisionError(reason) from exc
    log_event(logger, "created", gen=gen, physical_id_bytes=len(physical_id))
    return Outcome(physical_id, plan.data())


# -------------------------------------------------------------------------------------------- update


def _is_target_of(record: Record, lb_arn: str, bucket_name: str) -> bool:
    """Would properties (LoadBalancerArn, BucketName) produce this record's load balancer and bucket?"""
    if record.load_balancer_arn != lb_arn:
        return False
    if bucket_name:
        return record.bucket_source == SOURCE_NAMED and record.bucket == bucket_name
    return record.bucket_source != SOURCE_NAMED


def update(
    clients: Clients,
    ctx: RequestContext,
    *,
    physical_id: str,
    raw_props: Mapping[str, Any],
    raw_old_props: Mapping[str, Any] | None,
    deadline: Deadline,
    on_physical_id: PhysicalIdSink,
    progress: Progress,
) -> Outcome:
    """In place when the load balancer and bucket stay; otherwise a replacement with a new id."""
    # The stack update may have changed our role just before this request.
    clients.iam_propagation.open(deadline)
    on_physical_id(physical_id)
    record = decode(physical_id)
    new_target = (property_text(raw_props, LOAD_BALANCER_ARN), property_text(raw_props, BUCKET_NAME))
    old_target = (property_text(raw_old_props, LOAD_BALANCER_ARN), property_text(raw_old_props, BUCKET_NAME))
    if record is None or not record.prepared:
        # Nothing of ours is recorded under this id (e.g. a placeholder): build the resource afresh.
        log_event(logger, "update_without_record", logging.WARNING, physical_id=physical_id)
        return create(
            clients, ctx, raw_props=raw_props, deadline=deadline, on_physical_id=_ignore, progress=progress
        )
    target = record
    if (
        not _is_target_of(record, *new_target)
        and record.predecessor is not None
        and _is_target_of(record.predecessor, *new_target)
    ):
        # An update rollback after a replacement: the resource we replaced still exists (CloudFormation
        # deletes it only after the whole update succeeded). Go back to it instead of building a third
        # one; CloudFormation then deletes the one this id names.
        target = record.predecessor
        log_event(logger, "rollback_to_predecessor", gen=target.gen, replaced_gen=record.gen)
    if _is_target_of(target, *new_target):
        return _update_in_place(
            clients,
            ctx,
            record=target,
            # Going back to the predecessor takes over the notification rule the replacement put on a
            # shared bucket (the replacement is deleted right after).
            replaces_gen=record.gen if target is not record else None,
            physical_id=physical_id if target is record else encode(target),
            raw_props=raw_props,
            raw_old_props=raw_old_props,
            deadline=deadline,
            progress=progress,
        )
    _refuse_leaving_an_undeletable_bucket(record, new_target[1], raw_props, raw_old_props)
    log_event(logger, "replacement", replaced_gen=record.gen, changed=new_target != old_target)
    return create(
        clients,
        ctx,
        raw_props=raw_props,
        deadline=deadline,
        on_physical_id=_ignore,
        progress=progress,
        replacing=record,
    )


def _refuse_leaving_an_undeletable_bucket(
    record: Record,
    new_bucket_name: str,
    raw_props: Mapping[str, Any],
    raw_old_props: Mapping[str, Any] | None,
) -> None:
    """Refuse to move away from a bucket the stack created under LogBucketName and would delete.

    The role may create, empty and delete only the bucket LogBucketName names now (and the default name),
    and CloudFormation updates the role before it deletes the replaced resource: that Delete could no
    longer delete the old bucket. A kept bucket only loses our policy statements and notification rule,
    which the role may do on any bucket of the account.
    """
    created_by_name = record.bucket_created and record.bucket_source == SOURCE_NAMED
    if not created_by_name or new_bucket_name == record.bucket:
        return
    # Which properties the replaced resource's Delete carries is not ours to choose: both must keep it.
    if lenient_properties(raw_old_props).retain_bucket and lenient_properties(raw_props).retain_bucket:
        return
    raise PreconditionError(
        f"LogBucketName cannot change from {show(record.bucket)} while RetainLogBucket is false: the stack "
        f"created that bucket and would delete it with the replaced resource, but the new template lets the "
        f"provisioner's role delete only the bucket LogBucketName now names, so {show(record.bucket)} would "
        f"be left behind. Change RetainLogBucket to true first (on its own), then LogBucketName: the old "
        f"bucket is kept with its logs; delete it yourself if you no longer need it"
    )


def _ignore(_: str) -> None:
    """Physical id sink for replacements: until they succeed, the answer keeps the current id."""


def _update_in_place(
    clients: Clients,
    ctx: RequestContext,
    *,
    record: Record,
    physical_id: str,
    raw_props: Mapping[str, Any],
    raw_old_props: Mapping[str, Any] | None,
    deadline: Deadline,
    progress: Progress,
    replaces_gen: str | None = None,
) -> Outcome:
    """Re-apply the properties to the recorded resources. No undo: a failed update is rolled back by
    CloudFormation with another Update carrying the old properties, which converges back."""
    env = ctx.env
    steps = _Steps(deadline, progress)
    props = parse_properties(raw_props, env)
    prefix = effective_prefix(props.prefix, record)
    if record.bucket_source == SOURCE_ALB and not props.prefix:
        problem = prefix_problem(prefix, "the load balancer's original log prefix")
        if problem:
            raise PreconditionError(f"{problem}; set Prefix to use another one")
    key_prefix = log_key_prefix(prefix, env.account)
    name = topic_name(stack_name(ctx.stack_id), record.gen)
    own_rules = (rule_id(record.gen),) + ((rule_id(replaces_gen),) if replaces_gen else ())
    with steps.step("check the load balancer"):
        load_balancer.require_application(clients.elbv2, record.load_balancer_arn, env.account, env.region)
        live = load_balancer.read_access_logs(clients.elbv2, record.load_balancer_arn)
        _refuse_if_owned_elsewhere(clients, ctx, record.load_balancer_arn, live)
    with steps.step("check the bucket"):
        region = bucket_mod.bucket_region(clients.s3, record.bucket, env.account)
        if region is not None:
            if region != env.region:
                raise PreconditionError(
                    f"bucket {show(record.bucket)} is now in region {region}, not {env.region}"
                )
            bucket_mod.check_encryption(clients.s3, record.bucket)
            conflicts = notifications.find_conflicts(
                notifications.read(clients.s3, record.bucket), key_prefix, own_rules
            )
            if conflicts:
                raise PreconditionError(notifications.conflict_reason(conflicts, record.bucket, key_prefix))
        elif not record.bucket_created:
            raise PreconditionError(
                f"bucket {show(record.bucket)} no longer exists; recreate it or change BucketName (which "
                f"replaces the resource)"
            )
    _check_log_groups(clients, env, props, record.gen, steps)
    plan = Plan(
        props=props,
        record=record,
        prefix=prefix,
        key_prefix=key_prefix,
        topic_name=name,
        topic_arn=topic_arn(env, name),
        replace_rule_ids=own_rules,
    )
    _apply(clients, ctx, plan, steps, None)

    old = lenient_properties(raw_old_props)
    new_forwarder = props.forwarder.arn if props.forwarder is not None else ""
    dropped = [g for g in old.log_groups if g not in props.log_groups]
    filter_name = subscription_filter_name(record.gen)
    for log_group in dropped:
        with steps.step(f"remove the subscription filter from log group {show(log_group)}"):
            subscriptions.delete(clients.logs, log_group, filter_name)
    try:
        old_function = parse_function_arn(old.forwarder_arn, env) if old.forwarder_arn else None
    except ArnError:
        old_function = None
    if old_function is not None:
        moved = old.forwarder_arn != new_forwarder
        stale = [permission_sid(record.gen)] if moved else []
        stale += [log_group_permission_sid(record.gen, g) for g in (old.log_groups if moved else dropped)]
        if moved:
            # Denied when the update also took this grant from our role (see below): waiting cannot help.
            clients.iam_propagation.close()
        for sid in stale:
            with steps.step("remove the old forwarder's invoke permission"):
                _revoke_old_forwarder(clients.lambda_, old_function, sid, new_forwarder)
    log_event(logger, "updated_in_place", gen=record.gen, prefix=prefix)
    return Outcome(physical_id, plan.data())


def _revoke_old_forwarder(lambda_: Any, function: FunctionArn, sid: str, new_forwarder: str) -> None:
    """Remove our statement from a forwarder the stack no longer uses.

    When an update turns the forwarder off, the template removes the function and, in the same update,
    this role's permission to edit its policy, so RemovePermission is denied. The statement then goes
    with the function, which CloudFormation deletes once the update succeeds: not an error.
    """
    try:
        revoke(lambda_, function, sid)
    except ClientError as exc:
        if new_forwarder or error_code(exc) != "AccessDeniedException":
            raise
        log_event(
            logger,
            "old_forwarder_permission_left",
            logging.WARNING,
            function=function.arn,
            reason="access denied; the statement is deleted with the function",
        )


# -------------------------------------------------------------------------------------------- delete


def _in_use_by_others(s3: Any, bucket: str, gen: str) -> str | None:
    """Why a bucket we created is still needed by another resource of this project, or None."""
    others = {g for g in (sid_gen(s) for s in bucket_policy.sids_in(bucket_policy.read(s3, bucket))) if g}
    rule_ids = (str(r.get("Id", "")) for r in notifications.rules(notifications.read(s3, bucket)))
    others |= {g for g in (rule_gen(i) for i in rule_ids) if g}
    others.discard(gen)
    if others:
        return f"still used by generation(s) {', '.join(sorted(others))}"
    return None


def delete(
    clients: Clients,
    ctx: RequestContext,
    *,
    physical_id: str,
    raw_props: Mapping[str, Any] | None,
    deadline: Deadline,
    progress: Progress,
) -> None:
    """Undo what Create did, in reverse; already-gone things are fine, real errors are reported."""
    # A stack delete changes no role first, and an update's cleanup Delete comes after the whole update:
    # a denial here is the answer, and waiting would only delay a failure the retried Delete reports.
    clients.iam_propagation.close()
    record = decode(physical_id)
    if record is None:
        log_event(logger, "delete_unknown_physical_id", logging.WARNING, physical_id=physical_id)
        return
    if not record.prepared:
        log_event(logger, "delete_placeholder", gen=record.gen)
        return
    env = ctx.env
    settings = lenient_properties(raw_props)
    prefix = effective_prefix(settings.prefix, record)
    s3, bucket, gen = clients.s3, record.bucket, record.gen
    delete_bucket = record.bucket_created and not settings.retain_bucket
    failures: list[str] = []

    def tolerant(name: str, action: Callable[[], object]) -> None:
        progress(name)
        try:
            deadline.check(name)
            action()
        except (ClientError, BotoCoreError, ProvisionError) as exc:
            if bucket_mod.is_missing(exc):
                log_event(logger, "already_gone", step=name, bucket=bucket)
                return
            error = describe_aws_error(exc)
            failures.append(f"{name}: {error}")
            log_event(logger, "delete_step_failed", logging.ERROR, step=name, error=error)

    def restore_load_balancer() -> None:
        lb_arn = record.load_balancer_arn
        current = load_balancer.try_read_access_logs(clients.elbv2, lb_arn)
        if current is None:
            log_event(logger, "load_balancer_gone", arn=lb_arn)
            return
        owner = load_balancer.read_owner(clients.elbv2, lb_arn)
        mine = load_balancer.LogOwner(stack_id=ctx.stack_id, gen=gen)
        if owner is not None and owner != mine:
            # Another resource of this project (our replacement, or another stack) set logging since.
            log_event(
                logger,
                "load_balancer_left_alone",
                enabled=current.enabled,
                bucket=current.bucket,
                owner_stack_id=owner.stack_id,
                owner_gen=owner.gen,
            )
            return
        if current == AccessLogSettings(enabled=True, bucket=bucket, prefix=prefix):
            previous = _restorable(
                s3, record.previous_logging, deleted_bucket=bucket if delete_bucket else ""
            )
            result = load_balancer.restore_access_logs(clients.elbv2, lb_arn, previous)
            log_event(logger, "load_balancer_restored", result=result)
        else:
            # The user pointed logging elsewhere since: their choice stands.
            log_event(logger, "load_balancer_left_alone", enabled=current.enabled, bucket=current.bucket)
        if owner == mine:
            load_balancer.write_owner(clients.elbv2, lb_arn, None)

    def revoke_permission() -> None:
        try:
            function = parse_function_arn(settings.forwarder_arn, env)
        except ArnError:
            log_event(logger, "forwarder_arn_unreadable", logging.WARNING, value=settings.forwarder_arn)
            return
        revoke(clients.lambda_, function, permission_sid(gen))

    def remove_rule() -> None:
        notifications.remove_rules(s3, bucket, {rule_id(gen)})

    def unsubscribe(log_group: str) -> None:
        subscriptions.delete(clients.logs, log_group, subscription_filter_name(gen))
        try:
            function = parse_function_arn(settings.forwarder_arn, env)
        except ArnError:
            return  # reported by revoke_permission
        revoke(clients.lambda_, function, log_group_permission_sid(gen, log_group))

    def remove_statements() -> None:
        # A bucket we created and keep stays TLS-only.
        _remove_statements(s3, bucket, gen, keep_tls=record.bucket_created and not delete_bucket)

    for log_group in settings.log_groups:
        tolerant(f"unsubscribe log group {show(log_group)}", partial(unsubscribe, log_group))
    tolerant("restore the load balancer's access log settings", restore_load_balancer)
    tolerant("remove our bucket notification rule", remove_rule)
    tolerant("remove our bucket policy statements", remove_statements)
    name = topic_name(stack_name(ctx.stack_id), gen)
    tolerant("delete the topic", lambda: topic.delete(clients.sns, topic_arn(env, name)))
    if settings.forwarder_arn:
        tolerant("remove the forwarder's invoke permission", revoke_permission)
    if not failures:
        # A writer that read the bucket before our removal and wrote after our read-back put our rule (now
        # pointing at a deleted topic) or statements back unseen: look once more.
        tolerant("check that our notification rule stayed removed", remove_rule)
        tolerant("check that our bucket policy statements stayed removed", remove_statements)
    if delete_bucket and not failures:
        tolerant("delete the bucket", lambda: _delete_bucket(clients, ctx, record, deadline))
    elif record.bucket_created:
        log_event(logger, "bucket_kept", bucket=bucket, retain=settings.retain_bucket, failures=len(failures))

    if failures:
        raise ProvisionError(
            "Delete could not finish: "
            + "; ".join(failures)
            + ". Fix the cause (often a permission) and retry"
        )
    log_event(logger, "deleted", gen=gen)


def _restorable(s3: Any, previous: AccessLogSettings, *, deleted_bucket: str) -> AccessLogSettings:
    """The recorded settings, with logging off if their bucket is gone or is the one this Delete removes.

    Logging pointed at a missing bucket would deliver to whoever registers that name next.
    """
    if not previous.enabled:
        return previous
    if previous.bucket == deleted_bucket:
        why = "this stack deletes it (RetainBucket=false)"
    elif _bucket_gone(s3, previous.bucket):
        why = "it no longer exists"
    else:
        return previous
    log_event(
        logger,
        "previous_access_log_bucket_unusable",
        logging.WARNING,
        bucket=previous.bucket,
        reason=f"the bucket logging went to before this stack {why}; access logs turned off instead",
    )
    return replace(previous, enabled=False)


def _bucket_gone(s3: Any, bucket: str) -> bool:
    """True when no bucket has this name (HeadBucket 404); one we may not read (403) still exists."""
    if not bucket:
        return True
    try:
        return not bucket_mod.exists(s3, bucket)
    except ClientError as exc:
        if error_code(exc) in _DENIED:
            return False
        raise


def _delete_bucket(clients: Clients, ctx: RequestContext, record: Record, deadline: Deadline) -> None:
    s3, bucket = clients.s3, record.bucket
    if not bucket_mod.exists(s3, bucket):
        return
    if not bucket_mod.carries_stack_tag(s3, bucket, ctx.stack_id):
        log_event(logger, "bucket_not_ours_kept", logging.WARNING, bucket=bucket)
        return
    busy = _in_use_by_others(s3, bucket, record.gen)
    if busy:
        log_event(logger, "bucket_in_use_kept", bucket=bucket, reason=busy)
        return
    # Never leave a load balancer pointing at a bucket name someone else could register next.
    current = load_balancer.try_read_access_logs(clients.elbv2, record.load_balancer_arn)
    if current is not None and current.enabled and current.bucket == bucket:
        load_balancer.write_access_logs(
            clients.elbv2, record.load_balancer_arn, replace(current, enabled=False)
        )
    bucket_mod.empty_and_delete(s3, bucket, deadline)
