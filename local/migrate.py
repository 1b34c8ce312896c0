"""``python -m local.migrate``: move contacts and conversations stored before contacts had their own ids.

Before: one contact item per (tenant, phone) keyed ``CONTACT#<E.164>``, conversations carrying only the contact's
phone. After: a contact record ``CONTACT#<contact_id>`` with ``IDENTITY#phone#…`` (and ``IDENTITY#wa#…``) claims, and
conversations naming their ``contact_id`` (docs/decisions.md, "Contacts with their own ids", has the plan). The
gateway works during and without the migration: ids are derived from the phone, so a conversation keeps its id,
the API derives a missing ``contact_id``, and every new message writes the new records itself. This backfill
makes the data complete (the contacts of people who never wrote since, the list of a contact's conversations).

The conversations table is scanned page by page; each item is migrated with idempotent conditional writes, and the
position is saved after each page in ``--checkpoint`` (default ``.local/migrate-contacts.json``): a run that stops,
for any reason, resumes where it was with ``--resume``; running it again from the start is harmless too.

Against AWS (credentials from the environment, like the AWS CLI):
    python -m local.migrate --conversations-table <ConversationsTable name> --region eu-west-1 [--resume]
Against the running ``make dev``: ``python -m local.migrate`` (the tables of ``.local/state.json``).
Exit status 0 when done, 1 when an item failed (reported; run again with --resume), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import REPO_ROOT

DEFAULT_CHECKPOINT = REPO_ROOT / ".local" / "migrate-contacts.json"
PAGE_SIZE = 200


@dataclass
class MigrationReport:
    pages: int = 0
    scanned: int = 0
    contacts: int = 0
    conversations: int = 0
    failed: list[str] = field(default_factory=list)
    done: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "scanned": self.scanned,
            "contacts_moved": self.contacts,
            "conversations_linked": self.conversations,
            "failed": len(self.failed),
            "done": self.done,
        }


def migrate(
    *,
    checkpoint: Path,
    resume: bool = False,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    log: Callable[[str], None] = print,
) -> MigrationReport:
    """Migrate the bound conversations table (``gateway.bootstrap.ready``). ``max_pages`` stops early (tests use it
    to interrupt a run); the checkpoint then says where to resume."""
    from gateway.store.contacts_repo import ContactRepository
    from gateway.store.models import ContactModel, ConversationModel

    contacts = ContactRepository()
    report = MigrationReport()
    start: dict[str, Any] | None = None
    if resume and checkpoint.is_file():
        saved = json.loads(checkpoint.read_text())
        if saved.get("done"):
            log("nothing to resume: the last run finished")
            report.done = True
            return report
        start = saved.get("last_evaluated_key")
    client = ContactModel._get_connection().connection  # the same endpoint and credentials as the models
    table = ContactModel.Meta.table_name
    while max_pages is None or report.pages < max_pages:
        request: dict[str, Any] = {"TableName": table, "Limit": page_size, "ConsistentRead": True}
        if start:
            request["ExclusiveStartKey"] = start
        page = client.client.scan(**request)
        for raw in page.get("Items", []):
            report.scanned += 1
            sort_key = raw.get("sk", {}).get("S", "")
            try:
                if sort_key.startswith("CONTACT#+"):
                    contacts.adopt_legacy(ContactModel.from_raw_data(raw))
                    report.contacts += 1
                elif sort_key.startswith("CONV#") and contacts.adopt_conversation(ConversationModel.from_raw_data(raw)):
                    report.conversations += 1
            except Exception as error:  # reported, and the run goes on: a rerun retries it
                report.failed.append(f"{raw.get('pk', {}).get('S')} {sort_key}: {type(error).__name__}: {error}")
        report.pages += 1
        start = page.get("LastEvaluatedKey")
        report.done = start is None
        _save(checkpoint, {"last_evaluated_key": start, "done": report.done, **report.summary()})
        if report.done:
            break
    log(json.dumps(report.summary()))
    for failure in report.failed:
        log(f"failed: {failure}")
    return report


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations-table", help="the deployed ConversationsTable (default: make dev's)")
    parser.add_argument("--region", help="AWS region of the table")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args(argv)

    if args.conversations_table:
        os.environ["CONVERSATIONS_TABLE"] = args.conversations_table
        if args.region:
            os.environ["AWS_REGION"] = args.region
    else:
        from local.dev import aws_env
        from local.provision import Resources
        from local.state import read_state
        from local.template import load_template

        try:
            state = read_state()
        except (FileNotFoundError, RuntimeError) as error:
            print(f"{error} (or pass --conversations-table for a deployed stack)", file=sys.stderr)
            return 2
        template = load_template(state["template"])
        resources = Resources.from_dict(template, state["resources"])
        os.environ.update(aws_env(state["aws_endpoint"], state["region"]))
        os.environ.update(resources.function_env("WebhookMetaFunction"))
    sys.path.insert(0, str(REPO_ROOT / "layers" / "common"))
    from gateway.bootstrap import ready

    ready()
    report = migrate(checkpoint=args.checkpoint, resume=args.resume, page_size=args.page_size)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
