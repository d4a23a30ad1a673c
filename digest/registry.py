"""The plug-ins, one plain dict per kind: a name users type -> "module:attribute".

Adding one is one new module plus one line here. Entries are strings, so
reading the names (config checks, `digest check`) imports no plug-in and none
of its libraries; `load` imports the one that is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# [[sources]] type -> the Source class (digest.sources.Source) polling it
SOURCE_TYPES: dict[str, str] = {
    "files": "digest.sources.files:FilesSource",
    "feed": "digest.sources.feed:FeedSource",
    "page": "digest.sources.page:PageSource",
    "mailbox": "digest.sources.mailbox:MailboxSource",
}

# [[digests]] formats -> the packaged template that renders it (a user's `templates` folder may override it)
FORMATS: dict[str, str] = {
    "html": "digest.html",
    "md": "digest.md",
    "txt": "digest.txt",
    "json": "digest.json",  # the stable edition format for programs (README, "An edition as JSON")
}

# outbox channel -> the Deliverer class (digest.deliver.Deliverer) sending it
CHANNELS: dict[str, str] = {
    "files": "digest.deliver:FileDeliverer",
    "archive": "digest.deliver:ArchiveDeliverer",
    "email": "digest.deliver:EmailDeliverer",
    "subscriber": "digest.subscriber_mail:SubscriberDeliverer",
}

# [summary] algorithm -> the function (digest.summarise.Algorithm) picking sentences
SUMMARISERS: dict[str, str] = {
    "news": "digest.summarise:news",
    "lexrank": "digest.summarise:lexrank",
    "textrank": "digest.summarise:textrank",
    "lsa": "digest.summarise:lsa",
    "luhn": "digest.summarise:luhn",
    "kl": "digest.summarise:kl",
    "sumbasic": "digest.summarise:sumbasic",
    "reduction": "digest.summarise:reduction",
    "edmundson": "digest.summarise:edmundson",
    "lead": "digest.summarise:lead",
}


def load(entry: str) -> Any:
    """The object an entry names, its module imported on first use."""
    module, _, attribute = entry.partition(":")
    return getattr(importlib.import_module(module), attribute)
