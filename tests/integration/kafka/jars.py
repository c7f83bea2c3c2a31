"""The jars of Apache Kafka, from the cache scripts/kafka-jars.sh fills once per machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
JARS_SCRIPT = ROOT / "scripts" / "kafka-jars.sh"
FETCH_LIMIT_S = 900.0  # the first fetch of the jars on a machine (Maven Central)


class KafkaUnavailable(Exception):
    """Java, Maven or the jars are missing: the tier cannot run here (a skip, or a CI failure)."""


def jar_cache(limit_s: float = FETCH_LIMIT_S) -> Path:
    """The folder of Kafka's jars, fetched once per machine by scripts/kafka-jars.sh."""
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise KafkaUnavailable(
                f"{tool} is not installed (the Kafka tier needs Java 17+ and Maven)"
            )
    try:
        done = subprocess.run(
            ["bash", str(JARS_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=limit_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaUnavailable(f"{JARS_SCRIPT.name} took longer than {limit_s:.0f} s") from exc
    if done.returncode != 0:
        raise KafkaUnavailable(f"{JARS_SCRIPT.name} failed: {done.stderr.strip()[-1500:]}")
    return Path(done.stdout.strip().splitlines()[-1])
