"""digest: scheduled news summarisation and digests, offline."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/digest-news/digest"
