"""The provisioned listener accounts (`v5ctl provision-listeners` JSON lines), handed out to
simulated users so that the users of all locust processes get different accounts."""

from __future__ import annotations

import itertools
import json
from pathlib import Path


def load_accounts(path: str | None) -> list[dict[str, str]]:
    if not path:
        raise SystemExit("V5_ACCOUNTS_FILE is not set: run `v5ctl provision-listeners` first")
    lines = Path(path).read_text().splitlines()
    accounts = [json.loads(line) for line in lines if line.strip()]
    if not accounts:
        raise SystemExit(f"{path} has no accounts")
    return accounts


def account_index(worker: int, processes: int, taken_before: int) -> int:
    """Process k of n takes accounts k, k + n, k + 2n, ...: disjoint across processes, and
    together the first accounts of the file, since locust spreads users evenly."""
    return worker + processes * taken_before


class AccountPool:
    """Accounts for the users of one locust process, read when the first user asks. With more
    users than accounts, accounts are shared (round the file again)."""

    def __init__(self, path: str | None, *, processes: int = 1) -> None:
        self.path = path
        self.processes = processes
        self._accounts: list[dict[str, str]] | None = None
        self._taken = itertools.count()

    def take(self, worker: int) -> dict[str, str]:
        if self._accounts is None:
            self._accounts = load_accounts(self.path)
        index = account_index(worker, self.processes, next(self._taken))
        return self._accounts[index % len(self._accounts)]
