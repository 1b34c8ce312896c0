"""The console's Cognito SRP client (web/src/auth/srp.ts) against pycognito, an independent client that signs users
in to real Cognito: the same secret ``a``, challenge and clock must give the same SRP_A and the same password
claim, byte for byte. moto cannot check this (its PASSWORD_VERIFIER accepts any signature), so this is the test
that the AWS sign-in path computes what Cognito verifies.

The TypeScript module is compiled with the console's own TypeScript (web/node_modules, from ``make deps``) and run
by Node, which has the same WebCrypto and BigInt as a browser.
"""

from __future__ import annotations

import base64
import datetime
import json
import random
import shutil
import subprocess
from typing import Any

import pytest
from pycognito import aws_srp

from local import REPO_ROOT

WEB = REPO_ROOT / "web"
TSC = WEB / "node_modules" / ".bin" / "tsc"
N = aws_srp.hex_to_long(aws_srp.N_HEX)

DRIVER = """
import { srpClient, cognitoTimestamp } from "./srp.js";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const cases = JSON.parse(input);
const out = [];
for (const c of cases) {
  const client = await srpClient(c.pool_id, BigInt("0x" + c.a));
  const claim = await client.passwordClaim(c.challenge, c.password, new Date(c.now));
  out.push({ srp_a: client.srpA, timestamp: cognitoTimestamp(new Date(c.now)), ...claim });
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def run_console_srp(tmp_path_factory: pytest.TempPathFactory) -> Any:
    node = shutil.which("node")
    assert node, "Node.js is needed (it builds the console)"
    assert TSC.exists(), f"{TSC} is missing: run `make deps` (npm ci in web/)"
    out = tmp_path_factory.mktemp("srp")
    built = subprocess.run(
        [str(TSC), "--outDir", str(out), "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
         "--lib", "es2022,dom", "--strict", "--skipLibCheck", str(WEB / "src" / "auth" / "srp.ts")],
        cwd=WEB, capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (out / "driver.mjs").write_text(DRIVER)

    def run(cases: list[dict[str, Any]]) -> list[dict[str, str]]:
        done = subprocess.run([node, str(out / "driver.mjs")], input=json.dumps(cases), text=True,
                              capture_output=True, check=True, cwd=out)
        result: list[dict[str, str]] = json.loads(done.stdout)
        return result

    return run


class _FixedClock(datetime.datetime):
    now_value: datetime.datetime

    @classmethod
    def utcnow(cls) -> datetime.datetime:  # type: ignore[override]
        return cls.now_value


def reference(case: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What pycognito sends for the same inputs (its clock pinned to ``case["now"]``)."""
    srp = aws_srp.AWSSRP(case["email"], case["password"], case["pool_id"], "client", client=object())
    srp.small_a_value = int(case["a"], 16)
    srp.large_a_value = srp.calculate_a()
    _FixedClock.now_value = datetime.datetime.fromisoformat(case["now"].replace("Z", "")).replace(tzinfo=None)
    monkeypatch.setattr(aws_srp.datetime, "datetime", _FixedClock)
    claim = srp.process_challenge(case["challenge"], {"USERNAME": case["email"]})
    return {
        "srp_a": aws_srp.long_to_hex(srp.large_a_value),
        "timestamp": claim["TIMESTAMP"],
        "PASSWORD_CLAIM_SECRET_BLOCK": claim["PASSWORD_CLAIM_SECRET_BLOCK"],
        "PASSWORD_CLAIM_SIGNATURE": claim["PASSWORD_CLAIM_SIGNATURE"],
        "TIMESTAMP": claim["TIMESTAMP"],
    }


def make_case(rng: random.Random, **override: Any) -> dict[str, Any]:
    """A sign-in as Cognito would challenge it: B = k·v + g^b for the user's verifier, salt and secret block random.
    Cognito's SALT and SRP_B are hex of positive integers (no leading zeros)."""
    password = override.pop("password", "".join(rng.choice("abcXYZ019-_ é€") for _ in range(rng.randint(12, 40))))
    b = rng.getrandbits(1024) % N
    verifier = rng.getrandbits(3072) % N
    big_b = (aws_srp.hex_to_long(aws_srp.hex_hash("00" + aws_srp.N_HEX + "02")) * verifier + pow(2, b, N)) % N
    when = datetime.datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
                             rng.randint(0, 59), tzinfo=datetime.UTC)
    case = {
        "pool_id": f"us-east-1_{''.join(rng.choice('abcdefghijkABCDEFGHIJK0123456789') for _ in range(9))}",
        "email": "ops@acme.example",
        "password": password,
        "a": format(rng.getrandbits(1024) % N, "x"),
        "now": when.isoformat().replace("+00:00", "Z"),
        "challenge": {
            "SRP_B": format(big_b, "x"),
            "SALT": format(rng.getrandbits(128) | 1, "x"),
            "SECRET_BLOCK": base64.b64encode(rng.randbytes(rng.randint(100, 1500))).decode(),
            "USER_ID_FOR_SRP": f"{rng.getrandbits(128):032x}",
        },
    }
    case.update(override)
    return case


def test_console_srp_matches_pycognito(run_console_srp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261202)
    cases = [make_case(rng) for _ in range(24)]
    # Edges of the encodings: a salt whose top bit is set (padded with 00) and one of odd length; a one-digit day
    # (Cognito's timestamp does not pad it); a small A (odd-length hex); a password with non-ASCII characters.
    cases.append(make_case(rng, challenge={**cases[0]["challenge"], "SALT": "f" + "0" * 31}))
    cases.append(make_case(rng, challenge={**cases[0]["challenge"], "SALT": "abc"}))
    cases.append(make_case(rng, now="2026-03-05T07:08:09Z"))
    cases.append(make_case(rng, a="3"))
    cases.append(make_case(rng, password="Pässwörd-ünïcode-€-12"))

    actual = run_console_srp(cases)

    for case, got in zip(cases, actual, strict=True):
        assert got == reference(case, monkeypatch), case


def test_a_wrong_password_gives_another_signature(run_console_srp: Any) -> None:
    rng = random.Random(7)
    right = make_case(rng, password="Right-password-1")
    wrong = {**right, "password": "Wrong-password-1"}

    signatures = {r["PASSWORD_CLAIM_SIGNATURE"] for r in run_console_srp([right, wrong])}

    assert len(signatures) == 2


def test_timestamp_is_cognitos_format(run_console_srp: Any) -> None:
    case = make_case(random.Random(3), now="2023-09-05T08:05:07Z")

    assert run_console_srp([case])[0]["TIMESTAMP"] == "Tue Sep 5 08:05:07 UTC 2023"

