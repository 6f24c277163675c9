from __future__ import annotations

from tierkit.server.services.known_companies import KnownCompanies


def test_known__remembered_ids_by_environment_and_key__others_left_out() -> None:
    known = KnownCompanies()
    known.remember("env_a", {"acme": "co_1", "globex": "co_2"})
    known.remember("env_b", {"acme": "co_3"})

    assert known.known("env_a", ["acme", "initech"]) == {"acme": "co_1"}
    assert known.known("env_b", ["acme", "globex"]) == {"acme": "co_3"}


def test_forget__only_those_keys_of_that_environment() -> None:
    known = KnownCompanies()
    known.remember("env_a", {"acme": "co_1", "globex": "co_2"})
    known.remember("env_b", {"acme": "co_3"})

    known.forget("env_a", ["acme"])

    assert known.known("env_a", ["acme", "globex"]) == {"globex": "co_2"}
    assert known.known("env_b", ["acme"]) == {"acme": "co_3"}


def test_remember__past_its_size__starts_afresh_with_the_newest() -> None:
    known = KnownCompanies(size=3)
    known.remember("env", {"a": "co_a", "b": "co_b"})

    known.remember("env", {"c": "co_c", "d": "co_d"})

    assert known.known("env", ["a", "b", "c", "d"]) == {"c": "co_c", "d": "co_d"}
