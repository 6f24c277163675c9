"""An OpenFeature provider over Tierkit's local evaluation (`pip install openfeature-sdk`).

```python
from openfeature import api
from tierkit.openfeature import TierkitProvider
api.set_provider(TierkitProvider(api_key="tk_sec_...", base_url="http://127.0.0.1:8000"))
client = api.get_client()
client.get_boolean_value("sso", False, EvaluationContext(targeting_key="acme"))
```

The targeting key is the company key; a `user` attribute names the user; every other scalar
attribute is a trait for rules. Boolean and metered features resolve as booleans (a metered one
to `allowed`, with its usage in the flag metadata), enum features as strings, numeric ones as
integers or floats; `resolve_object_details` gives the whole check reply. Reasons, variants and
metadata are the server's OFREP ones (`tierkit.engine.openfeature`). The provider emits
`PROVIDER_STALE` when the sync with the server drops, `PROVIDER_READY` when it is back, and
`PROVIDER_CONFIGURATION_CHANGED` when the catalog changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from tierkit.client import Client, NotReadyError
from tierkit.engine.catalog import Scalar
from tierkit.engine.codec import decision_to_json
from tierkit.engine.evaluate import Decision
from tierkit.engine.evaluate import Reason as TierkitReason
from tierkit.engine.openfeature import evaluation

T = TypeVar("T")

_ERROR_CODES = {
    "feature_not_found": ErrorCode.FLAG_NOT_FOUND,
    "not_ready": ErrorCode.PROVIDER_NOT_READY,
}


class TierkitProvider(AbstractProvider):
    def __init__(self, client: Client | None = None, **options: Any) -> None:
        """Over `client` (a `Client(local=True)`), or over one it builds from `options` (the
        `Client` keywords) and closes at shutdown."""
        super().__init__()
        self._owns_client = client is None
        self.client = client if client is not None else Client(local=True, **options)
        if not self.client.options.local:
            raise ValueError("TierkitProvider evaluates locally: pass a Client(local=True)")
        self.client.on_sync(self._on_sync)

    def get_metadata(self) -> Metadata:
        return Metadata(name="Tierkit")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        try:
            self.client.wait_until_ready()
        except NotReadyError as error:
            raise ProviderNotReadyError(str(error)) from error

    def shutdown(self) -> None:
        if self._owns_client:
            self.client.close()

    def _on_sync(self, what: str) -> None:
        details = ProviderEventDetails(message=f"tierkit sync: {what}")
        if what == "stale":
            self.emit_provider_stale(details)
        elif what == "connected":
            self.emit_provider_ready(details)
        elif what == "catalog":
            self.emit_provider_configuration_changed(details)

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Track usage: the event for the targeting key's company, `value` as its quantity."""
        company = evaluation_context.targeting_key if evaluation_context else None
        if not company:
            return
        quantity = tracking_event_details.value if tracking_event_details else None
        self.client.track(
            tracking_event_name,
            company=company,
            quantity=quantity if quantity is not None else 1,
            properties=dict(tracking_event_details.attributes) if tracking_event_details else None,
        )

    # -- resolution --------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        decision = self._decide(flag_key, evaluation_context)
        if isinstance(decision, FlagResolutionDetails):
            return _failed(default_value, decision)
        if decision.reason is TierkitReason.ERROR:
            return _error(default_value, decision)
        found = evaluation(self._catalog(), decision)
        return FlagResolutionDetails(
            value=decision_to_json(decision),
            reason=found["reason"],
            variant=found["variant"],
            flag_metadata=found["metadata"],
        )

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        context: EvaluationContext | None,
        types: tuple[type, ...],
    ) -> FlagResolutionDetails[T]:
        decision = self._decide(flag_key, context)
        if isinstance(decision, FlagResolutionDetails):
            return _failed(default_value, decision)
        if decision.reason is TierkitReason.ERROR:
            return _error(default_value, decision)
        found = evaluation(self._catalog(), decision)
        value = found["value"]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            return FlagResolutionDetails(
                value=default_value,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"{flag_key!r} evaluates to a {type(value).__name__}",
                flag_metadata=found["metadata"],
            )
        if float in types and isinstance(value, int):
            value = float(value)
        return FlagResolutionDetails(
            value=value,
            reason=found["reason"],
            variant=found["variant"],
            flag_metadata=found["metadata"],
        )

    def _catalog(self) -> Any:
        return self.client.catalog

    def _decide(
        self, flag_key: str, context: EvaluationContext | None
    ) -> Decision | FlagResolutionDetails[None]:
        company = context.targeting_key if context is not None else None
        if not company:
            return FlagResolutionDetails(
                value=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.TARGETING_KEY_MISSING,
                error_message="the targeting key (the company key) is required",
            )
        attributes = dict(context.attributes) if context is not None else {}
        user = attributes.pop("user", None)
        traits: dict[str, Scalar] = {}
        for name, value in attributes.items():
            if not isinstance(value, bool | int | float | str):
                return FlagResolutionDetails(
                    value=None,
                    reason=Reason.ERROR,
                    error_code=ErrorCode.INVALID_CONTEXT,
                    error_message=f"attribute {name!r} must be a string, a number or a boolean",
                )
            traits[name] = value
        if user is not None and not isinstance(user, str):
            return FlagResolutionDetails(
                value=None,
                reason=Reason.ERROR,
                error_code=ErrorCode.INVALID_CONTEXT,
                error_message="the `user` attribute names the user: a string",
            )
        return self.client.check(company, flag_key, user=user, context=traits or None)


def _failed(default_value: T, failure: FlagResolutionDetails[None]) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=failure.error_code,
        error_message=failure.error_message,
    )


def _error(default_value: T, decision: Decision) -> FlagResolutionDetails[T]:
    code = _ERROR_CODES.get(decision.error_code or "", ErrorCode.GENERAL)
    return FlagResolutionDetails(
        value=default_value,
        reason=Reason.ERROR,
        error_code=code,
        error_message=f"tierkit: {decision.error_code}",
        flag_metadata={"stale": True} if decision.stale else {},
    )
