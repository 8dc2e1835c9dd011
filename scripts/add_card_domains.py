"""Write the training data's domain into the shipped model cards (sample_data/models/*.json).

The cards made by ``python -m training fit`` carry it already; the shipped ones were
trained before cards had a ``domain``. It is measured here, as training measures it
(``napari_iaa.models.domain.domain_of``), from the data the models were trained on:
- LIDC cards (``training_data.path`` names LIDC): slices of every 20th patient of the
  LIDC-IDRI archive in ``../shared/data/lidc-idri-4raters`` (about 30 patients, spread
  over the whole archive), 64 slices of them sampled evenly;
- synthetic cards: the generator's data set with the shipped models' arguments
  (``generate_synthetic_dataset(n=64, seed=0, size=(128, 128))``: the first cases of
  the sets the models were trained on).

Only the ``domain`` key is added or replaced (after ``training_data``); the rest of each
card stays byte for byte, the weights are not touched.

    python scripts/add_card_domains.py [--lidc-archive PATH] [--models DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

from napari_iaa.data import atomic_write_bytes, generate_synthetic_dataset, open_dataset
from napari_iaa.models.domain import DataDomain, domain_of

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "lidc-idri-4raters" / "lidc-idri-4raters-dev.tar.gz"
LIDC_MODALITY = "CT slices (LIDC-IDRI lung nodule crops)"
SYNTH_MODALITY = "dermoscopy (synthetic, IMA++ layout)"
SAMPLE = 64


def lidc_domain(archive: Path, every: int = 20) -> DataDomain:
    """Domain of the LIDC slices of every ``every``-th patient of the archive."""
    with tempfile.TemporaryDirectory() as tmp:
        seen: list[str] = []
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if len(parts) < 2 or parts[0] != "LIDC-IDRI-slices":
                    continue
                if parts[1] not in seen:
                    seen.append(parts[1])
                if (len(seen) - 1) % every == 0 and (member.isfile() or member.isdir()):
                    tar.extract(member, tmp, filter="data")
        ds = open_dataset(Path(tmp) / "LIDC-IDRI-slices")
        print(f"LIDC: {len(ds)} slices of {len(seen[::every])} patients", file=sys.stderr)
        return domain_of(ds, max_cases=SAMPLE, modality=LIDC_MODALITY)


def synthetic_domain() -> DataDomain:
    """Domain of the synthetic dermoscopy set the ``*-synth`` models were trained on."""
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic_dataset(Path(tmp) / "synth", n=SAMPLE, seed=0, size=(128, 128))
        return domain_of(open_dataset(root), max_cases=SAMPLE, modality=SYNTH_MODALITY)


def with_domain(card: dict, domain: DataDomain) -> dict:
    """The card with ``domain`` placed right after ``training_data`` (key order kept)."""
    out: dict = {}
    for key, value in card.items():
        if key == "domain":
            continue
        out[key] = value
        if key == "training_data":
            out["domain"] = domain.to_dict()
    if "domain" not in out:
        out["domain"] = domain.to_dict()
    return out


def kind_of(card: dict) -> str | None:
    """"lidc" or "synth" from the card's training data path (None: unknown)."""
    td = card.get("training_data")
    path = str(td.get("path", "") if isinstance(td, dict) else td or "").lower()
    if "lidc" in path:
        return "lidc"
    if "synth" in path:
        return "synth"
    return None


def main(argv: list[str] | None = None) -> int:
    """Add the domain to every card of ``--models``; ``--check`` only reports."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT / "sample_data" / "models")
    ap.add_argument("--lidc-archive", type=Path, default=ARCHIVE)
    ap.add_argument("--check", action="store_true", help="print the domains, write nothing")
    args = ap.parse_args(argv)
    cards = {p: json.loads(p.read_text("utf-8")) for p in sorted(args.models.glob("*.json"))}
    kinds = {p: kind_of(c) for p, c in cards.items()}
    domains: dict[str, DataDomain] = {}
    if "lidc" in kinds.values():
        if not args.lidc_archive.is_file():
            print(f"{args.lidc_archive}: LIDC archive not found", file=sys.stderr)
            return 2
        domains["lidc"] = lidc_domain(args.lidc_archive)
    if "synth" in kinds.values():
        domains["synth"] = synthetic_domain()
    for kind, dom in domains.items():
        print(f"{kind}: {json.dumps(dom.to_dict())}")
    for path, card in cards.items():
        kind = kinds[path]
        if kind is None:
            print(f"{path.name}: training data not recognised, left as it is", file=sys.stderr)
            continue
        text = json.dumps(with_domain(card, domains[kind]), indent=2, allow_nan=False)
        if not args.check:
            atomic_write_bytes(path, text.encode("utf-8"))
        print(f"{path.name}: {kind} domain {'(checked)' if args.check else 'written'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
