"""Checks DSSE envelopes with the in-toto attestation framework's Python bindings and securesystemslib.

Input (argv[1]): a JSON list of {"label", "envelope": {payload, payloadType, signatures}, "pem"}.
Output (stdout): a JSON list of {"label", "statement": "ok" | error, "resources": [errors],
"provenance": "ok" | error | null, "dsse": "ok" | error}, one per input, in order.

- Statement v1: the payload parsed into the Statement proto (unknown fields refused) and
  Statement.validate(); every subject a ResourceDescriptor that validates.
- SLSA v1 predicates: parsed into the Provenance proto (unknown fields refused); every
  resolvedDependency and byproduct a ResourceDescriptor that validates.
- DSSE: securesystemslib's Envelope.verify with the given public key (threshold 1). The key
  carries the keyid the signature names (DSSE keyids are unauthenticated hints; customs, like
  cosign and model_signing, leaves it empty).
"""
import base64
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

SLSA_V1 = "https://slsa.dev/provenance/v1"


def rd_errors(where, items):
    errors = []
    for i, rd in enumerate(items):
        try:
            ResourceDescriptor.copy_from_pb(rd).validate()
        except Exception as e:  # noqa: BLE001 - report every failure
            errors.append(f"{where}[{i}]: {e}")
    return errors


def check(item):
    out = {"label": item["label"], "resources": [], "provenance": None}
    env = item["envelope"]
    payload = base64.b64decode(env["payload"])
    try:
        pb = json_format.Parse(payload, statement_pb2.Statement())
        Statement.copy_from_pb(pb).validate()
        out["statement"] = "ok"
        out["resources"] += rd_errors("subject", pb.subject)
        if pb.predicate_type == SLSA_V1:
            prov = json_format.ParseDict(json.loads(payload)["predicate"], provenance_pb2.Provenance())
            out["provenance"] = "ok"
            out["resources"] += rd_errors("resolvedDependencies", prov.build_definition.resolved_dependencies)
            out["resources"] += rd_errors("byproducts", prov.run_details.byproducts)
    except Exception as e:  # noqa: BLE001
        out["statement"] = f"{type(e).__name__}: {e}"
    try:
        keyid = env["signatures"][0].get("keyid", "")
        key = SSlibKey.from_crypto(load_pem_public_key(item["pem"].encode()), scheme=item.get("scheme", "ecdsa-sha2-nistp256"))
        key = SSlibKey(keyid, key.keytype, key.scheme, key.keyval)
        Envelope.from_dict(json.loads(json.dumps(env))).verify([key], 1)
        out["dsse"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["dsse"] = f"{type(e).__name__}: {e}"
    return out


def main():
    with open(sys.argv[1]) as f:
        items = json.load(f)
    json.dump([check(i) for i in items], sys.stdout)


if __name__ == "__main__":
    main()
