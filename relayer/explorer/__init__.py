"""The operator's explorer page and its JSON endpoints (``routes``), the chain sample history the daemon's
health job feeds (``samples``) and the read-only store queries behind them (``queries``)."""

from relayer.explorer.queries import ExplorerQueries, PageCursor
from relayer.explorer.routes import ExplorerChain, create_explorer_api
from relayer.explorer.samples import ChainSample, ChainSampleBuffer

__all__ = ["ChainSample", "ChainSampleBuffer", "ExplorerChain", "ExplorerQueries", "PageCursor", "create_explorer_api"]
