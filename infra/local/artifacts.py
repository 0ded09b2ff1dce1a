"""Fetch the Java artifacts of the local stack from Maven Central with `mvn`, with bounded retries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_incrementing

from streams.core.errors import ConfigurationError, DownloadError

POM = Path(__file__).resolve().parent / "pom.xml"


def require_tool(tool: str, fix: str) -> str:
    """The path of a command-line tool, or a ConfigurationError that says how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise ConfigurationError(f"`{tool}` was not found on PATH. {fix}")
    return path


def java_major(java: str) -> int:
    """The major version of the given `java` executable."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    try:
        version = out.split('"')[1]
    except IndexError as error:
        raise ConfigurationError(f"Could not read the Java version from `{java} -version`: {out!r}") from error
    major = version.split(".")[0]
    return int(version.split(".")[1]) if major == "1" else int(major)


def require_java() -> str:
    """A Java 17+ runtime, or an error that says how to get one."""
    java = require_tool("java", "Install Java 17 or newer: `apt-get install -y openjdk-17-jre-headless`.")
    if java_major(java) < 17:
        raise ConfigurationError(
            f"{java} is Java {java_major(java)}; the local stack needs Java 17+. "
            "Install it with `apt-get install -y openjdk-17-jre-headless` and put it first on PATH."
        )
    return java


def resolve(profile: str, lib_dir: Path, attempts: int, log: Path) -> Path:
    """Copy the jars of one pom profile into lib_dir (once; a marker records success)."""
    marker = lib_dir / ".complete"
    if marker.exists() and marker.read_text() == POM.read_text():
        return lib_dir
    mvn = require_tool("mvn", "Install Maven: `apt-get install -y maven`.")
    command = [
        mvn, "-B", "-q", "-f", str(POM), f"-P{profile}", "dependency:copy-dependencies",
        f"-DoutputDirectory={lib_dir}", "-DincludeScope=runtime", "-Dmdep.overWriteIfNewer=true",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    outputs: list[str] = []

    def run_maven() -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        outputs.append(result.stdout + result.stderr)
        with log.open("a") as handle:
            handle.write(f"--- mvn attempt {len(outputs)}: {' '.join(command)}\n{outputs[-1]}\n")
        return result

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_incrementing(start=5, increment=5),
                        retry=retry_if_result(lambda result: result.returncode != 0),
                        retry_error_callback=lambda _: None)  # the last failure is described below
    if retrying(run_maven) is not None:
        marker.write_text(POM.read_text())
        return lib_dir
    output = outputs[-1]
    errors = [line for line in output.splitlines() if "ERROR" in line][:5] or output.splitlines()[-5:]
    raise DownloadError(
        f"Maven could not resolve the '{profile}' artifacts after {attempts} attempts "
        f"(full log: {log}):\n  " + "\n  ".join(errors) +
        "\nCheck that Maven Central is reachable (`mvn dependency:get -Dartifact=junit:junit:4.13.2`)."
    )
