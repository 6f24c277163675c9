"""All services over one database and clock: what app.py and the CLI build and hand out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tierkit.server.db import Database
from tierkit.server.services.accounts import AccountService
from tierkit.server.services.api_keys import ApiKeyService
from tierkit.server.services.audit import AuditService
from tierkit.server.services.catalog_apply import CatalogService
from tierkit.server.services.catalog_cache import CatalogCache
from tierkit.server.services.change_relay import ChangeRelay
from tierkit.server.services.changes import ChangeFeed, ChangeKind
from tierkit.server.services.checks import CheckService
from tierkit.server.services.clock import Clock, system_clock
from tierkit.server.services.companies import CompanyService
from tierkit.server.services.console_users import ConsoleUserService
from tierkit.server.services.credits import CreditService
from tierkit.server.services.customers import CustomerService
from tierkit.server.services.environments import EnvironmentService
from tierkit.server.services.events import EventService
from tierkit.server.services.features import FeatureService
from tierkit.server.services.jobs import JobService
from tierkit.server.services.overrides import OverrideService
from tierkit.server.services.plan_migrations import PlanMigrationService
from tierkit.server.services.plans import PlanService
from tierkit.server.services.pricing import PricingService
from tierkit.server.services.sdk import SdkService
from tierkit.server.services.secret_box import SecretBox
from tierkit.server.services.subscriptions import SubscriptionService
from tierkit.server.services.telemetry import Telemetry
from tierkit.server.services.usage import UsageService
from tierkit.server.services.users import UserService
from tierkit.server.services.webhooks import WebhookService


@dataclass(frozen=True, slots=True)
class Services:
    database: Database
    clock: Clock
    environments: EnvironmentService
    api_keys: ApiKeyService
    features: FeatureService
    plans: PlanService
    catalog: CatalogService
    plan_versions: PlanMigrationService
    companies: CompanyService
    customers: CustomerService
    subscriptions: SubscriptionService
    overrides: OverrideService
    users: UserService
    accounts: AccountService
    checks: CheckService
    events: EventService
    credits: CreditService
    pricing: PricingService
    usage: UsageService
    changes: ChangeFeed
    sdk: SdkService
    webhooks: WebhookService
    audit: AuditService
    jobs: JobService
    console_users: ConsoleUserService
    secret_box: SecretBox
    relay: ChangeRelay | None = None

    @classmethod
    def build(
        cls,
        database: Database,
        clock: Clock = system_clock,
        *,
        cache_seconds: float = 10.0,
        telemetry: Telemetry | None = None,
        secret_box: SecretBox | None = None,
        relay: ChangeRelay | None = None,
    ) -> Services:
        """`cache_seconds`: how long checks trust what they read when no note of a change
        reaches them (this process's own writes take effect at once). `telemetry`: what
        counts cache reads, decisions and events (the app's metrics). `secret_box` seals
        secrets at rest; by default, with the keys `TIERKIT_SECRET_KEY*` configure for this
        database (`server/secret_keys.py`), loaded when first needed. `relay`: how this
        process's writes tell other processes (`change_relay.build_relay`); none, and they
        learn of them within their `cache_seconds`."""
        if secret_box is None:
            from tierkit.server.secret_keys import secret_box_of_environment

            secret_box = secret_box_of_environment(
                database.url.render_as_string(hide_password=False)
            )
        if relay is not None:
            relay.install()
        catalogs = CatalogCache(database, cache_seconds, telemetry)
        feed = ChangeFeed()
        checks = CheckService(database, clock, catalogs, cache_seconds, feed, telemetry=telemetry)
        catalog_changed = feed.catalog_hook(checks.catalog_changed)

        def customer(kind: ChangeKind) -> Callable[[str, str], None]:
            return feed.customer_hook(checks.company_changed, kind)

        user_changed = feed.user_hook(checks.user_changed)
        events = EventService(
            database, clock, catalogs, customer(ChangeKind.USAGE), user_changed, telemetry=telemetry
        )
        features = FeatureService(database, clock, catalog_changed)
        plans = PlanService(database, clock, catalog_changed)
        credits = CreditService(
            database, clock, catalogs, catalog_changed, customer(ChangeKind.CREDITS)
        )
        return cls(
            database=database,
            clock=clock,
            environments=EnvironmentService(database, clock),
            api_keys=ApiKeyService(database, clock),
            features=features,
            plans=plans,
            catalog=CatalogService(database, features, plans, credits, catalog_changed),
            plan_versions=PlanMigrationService(
                database, clock, catalog_changed, customer(ChangeKind.SUBSCRIPTION)
            ),
            companies=CompanyService(database, clock, customer(ChangeKind.COMPANY)),
            customers=CustomerService(database, clock, customer(ChangeKind.COMPANY)),
            subscriptions=SubscriptionService(database, clock, customer(ChangeKind.SUBSCRIPTION)),
            overrides=OverrideService(database, clock, customer(ChangeKind.OVERRIDE)),
            users=UserService(database, clock, user_changed),
            accounts=AccountService(database, clock, customer(ChangeKind.COMPANY)),
            checks=checks,
            events=events,
            usage=UsageService(database, clock, catalogs, checks),
            pricing=PricingService(clock, catalogs, checks),
            credits=credits,
            changes=feed,
            sdk=SdkService(clock, checks, events),
            webhooks=WebhookService(database, clock, secret_box),
            audit=AuditService(database, clock),
            jobs=JobService(database, clock),
            console_users=ConsoleUserService(database, clock),
            secret_box=secret_box,
            relay=relay,
        )
