"""The kazeflow quickstart: two assets, one config value, incremental runs.

Run it twice: the first run materializes both assets, the second reuses them.
"""

import logging

from kazeflow.assets import asset
from kazeflow.config import Config
from kazeflow.flow import Flow


@asset
def raw_data():
    return [1, 2, 3, 4, 5]


@asset(deps=["raw_data"], config_schema=Config)
def processed_data(config: Config, raw_data):
    return sum(raw_data) * config.get("multiplier", 1)


#: The flow and its config: `python quickstart.py` runs it, and
#: `kazeflow status quickstart.py:flow` checks the very same flow.
flow = Flow(["processed_data"], config={"processed_data": {"multiplier": 2}})

if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    logging.getLogger("kazeflow").setLevel(logging.INFO)
    results = flow.run()
    print(f"Flow results: {results}")
    print(f"{len(results.reused)} reused, {len(results.materialized)} materialized")
