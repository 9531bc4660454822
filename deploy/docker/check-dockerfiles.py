#!/usr/bin/env python3
"""Static checks of deploy/docker/*.Dockerfile, for machines without a Docker engine.

    python3 deploy/docker/check-dockerfiles.py

For each Dockerfile: every instruction is a Dockerfile keyword; it builds one workspace package
with `cargo build --release --locked -p PACKAGE` under cache mounts and copies out that
package's binary; the final stage runs as a non-root numeric USER, has a HEALTHCHECK and an
ENTRYPOINT naming the binary; every COPY from the build context exists and is not excluded by
.dockerignore (only its simple `path` and `**/name` patterns are understood), except in the
`prebuilt` stage, which copies prebuilt/BINARY from the small context deploy/images/build.sh
assembles for tests; the final stage copies the binary from stage `binary`, which is `builder`
unless BINARY_FROM says `prebuilt`.
"""

import fnmatch
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
KEYWORDS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
            "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def packages():
    """Workspace package name -> its binary names."""
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    result = {}
    for member in members:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        name = manifest["package"]["name"]
        bins = [b["name"] for b in manifest.get("bin", [])]
        if not bins and (ROOT / member / "src/main.rs").exists():
            bins = [name]
        result[name] = bins
    return result


def ignored(path, patterns):
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in pathlib.PurePath(path).parts):
                return True
        elif path == pattern or path.startswith(pattern.rstrip("/") + "/") or fnmatch.fnmatch(path, pattern):
            return True
    return False


def instructions(text):
    """Logical instructions: comments dropped, continuation lines joined."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        result.append(current)
        current = ""
    if current:
        result.append(current)
    return result


def check(path, pkgs, patterns):
    errors = []
    steps = instructions(path.read_text())
    for step in steps:
        keyword = step.split(None, 1)[0].upper()
        if keyword not in KEYWORDS:
            errors.append(f"unknown instruction {keyword!r}")
    stages = [i for i, s in enumerate(steps) if s.upper().startswith("FROM ")]
    if len(stages) < 2:
        errors.append("not a multi-stage build")
        return errors
    final = steps[stages[-1]:]

    build = [s for s in steps if "cargo build" in s]
    if len(build) != 1:
        errors.append("expected exactly one `cargo build` step")
        return errors
    m = re.search(r"cargo build --release --locked -p (\S+)", build[0])
    if not m:
        errors.append("the build must be `cargo build --release --locked -p PACKAGE`")
        return errors
    package = m.group(1)
    if package not in pkgs:
        errors.append(f"{package} is not a workspace package")
        return errors
    if "--mount=type=cache" not in build[0]:
        errors.append("the cargo build has no cache mounts")
    binary = pkgs[package][0] if pkgs[package] else None
    if not binary or f"target/release/{binary}" not in build[0]:
        errors.append(f"the build does not copy out target/release/{binary}")

    users = [s.split(None, 1)[1] for s in final if s.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root") or not users[-1].split(":")[0].isdigit():
        errors.append("the final stage must end with a numeric non-root USER")
    if not any(s.upper().startswith("HEALTHCHECK ") for s in final):
        errors.append("the final stage has no HEALTHCHECK")
    entry = [s for s in final if s.upper().startswith("ENTRYPOINT ")]
    if not entry or binary not in entry[-1]:
        errors.append(f"the ENTRYPOINT does not run {binary}")

    prebuilt = [i for i in stages if steps[i].split()[-1] == "prebuilt"]
    if len(prebuilt) != 1 or f"COPY prebuilt/{binary} /out/{binary}" not in steps[prebuilt[0] + 1]:
        errors.append(f"no `prebuilt` stage copying prebuilt/{binary} to /out/{binary}")
    if "ARG BINARY_FROM=builder" not in steps or "FROM ${BINARY_FROM} AS binary" not in steps:
        errors.append("BINARY_FROM must default to builder and name stage `binary`")
    if not any(s.startswith(f"COPY --from=binary /out/{binary} ") for s in final):
        errors.append(f"the final stage does not copy /out/{binary} from stage `binary`")

    for index, step in enumerate(steps):
        if prebuilt and prebuilt[0] < index < min([i for i in stages if i > prebuilt[0]] or [len(steps)]):
            continue
        if not step.upper().startswith("COPY ") or "--from=" in step:
            continue
        words = [w for w in step.split()[1:] if not w.startswith("--")]
        for source in words[:-1]:
            if source == ".":
                continue
            if not (ROOT / source).exists():
                errors.append(f"COPY source {source} does not exist")
            elif ignored(source, patterns):
                errors.append(f"COPY source {source} is excluded by .dockerignore")
    return errors


def main():
    pkgs = packages()
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for member in ("Cargo.toml", "Cargo.lock"):
        if ignored(member, patterns):
            sys.exit(f".dockerignore excludes {member}")
    for member in tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]:
        if ignored(member + "/Cargo.toml", patterns) or ignored(member + "/src/lib.rs", patterns):
            sys.exit(f".dockerignore excludes the workspace member {member}")
    files = sorted((ROOT / "deploy/docker").glob("*.Dockerfile"))
    if not files:
        sys.exit("no deploy/docker/*.Dockerfile")
    failed = False
    for path in files:
        errors = check(path, pkgs, patterns)
        for e in errors:
            print(f"{path.relative_to(ROOT)}: {e}", file=sys.stderr)
        failed |= bool(errors)
    if failed:
        sys.exit(1)
    print(f"{len(files)} Dockerfiles: multi-stage, locked cached builds of workspace packages, "
          f"non-root, health-checked; build context consistent with .dockerignore")


main()
