"""schemathesis hooks of `cargo xtask test` (loaded through SCHEMATHESIS_HOOKS).

An `Idempotency-Key` that a request already used with another body is a 422
(the IETF idempotency-key draft's answer): the state of the key, not the data
of the request. schemathesis draws keys from a small space ("0", "!" ...), so
unrelated requests would share keys. Each valid key it generates gets a unique
suffix (still valid: at most 128 visible ASCII characters); invalid keys are sent
unchanged, so the 400 for a malformed key is still fuzzed. tests/e2e covers
replays with the same key.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[\x21-\x7E]{1,128}$")


@schemathesis.hook
def map_headers(context, headers):
    if headers:
        for name in list(headers):
            value = headers[name]
            if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
                headers[name] = f"{value[:111]}-{uuid.uuid4().hex[:16]}"
    return headers
