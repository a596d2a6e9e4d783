"""Compose files into a Project: found, read, interpolated, merged and
normalized as Docker Compose (v2, the Compose Specification) does.

- Files: -f FILE... (`-` is stdin), else $COMPOSE_FILE (paths joined
  with ':'), else compose.yaml, compose.yml, docker-compose.yaml or
  docker-compose.yml in the working directory or the nearest parent that
  has one, with its compose.override.yaml (or .yml, or docker-compose.*)
  beside it.  Later files override earlier ones: mappings merge key by
  key, ports/expose/dns/... add up, volumes merge by their target path,
  and command, entrypoint and healthcheck.test are replaced.
- YAML: scalars as YAML 1.2 reads them (Compose's loader), not 1.1's:
  `22:22` is a string (1.1 reads 1342), `yes`, `no`, `on` and `off` are
  strings, `010` is ten; anchors, aliases and `<<` merge keys work.
- Interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
  ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}
  (defaults may nest), $$ for a dollar; values from the environment,
  then the project directory's .env (or --env-file); an unset variable
  is a blank string, with a warning as Compose gives.
- Project name: -p, $COMPOSE_PROJECT_NAME, the top-level `name:`, else
  the project directory's base name, made lowercase letters, digits, '-'
  and '_' as Compose does."""

import os
import re
import shlex
import sys

from ..errors import SandboxError, UsageError

FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_NAMES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")


class ComposeError(SandboxError):
    """A compose file or project that cannot be used (docker compose exits 1)."""

    exit_code = 1


# -- YAML ---------------------------------------------------------------------

_LOADER = None


def yaml_module():
    """PyYAML (in the shared virtualenv, or the frozen binary)."""
    from ..deps import enable_site
    enable_site()
    try:
        import yaml
    except ImportError:
        from ..errors import HostError
        raise HostError("compose needs PyYAML, which is not installed",
                        hint="run scripts/setup-host (it installs the packages of "
                             "pyproject.toml), or pip install PyYAML") from None
    return yaml


def _loader():
    """PyYAML's safe loader with YAML 1.2's core schema for plain scalars."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    yaml = yaml_module()

    class Loader(yaml.SafeLoader):
        pass
    Loader.yaml_implicit_resolvers = {}
    for tag, regexp, first in (
            ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
            ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
            ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                      r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
            ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
            ("merge", r"^(?:<<)$", "<")):
        Loader.add_implicit_resolver("tag:yaml.org,2002:" + tag, re.compile(regexp), list(first))

    def construct_int(loader, node):
        text = loader.construct_scalar(node)
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)
    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _LOADER = Loader
    return Loader


def parse_yaml(text, where):
    yaml = yaml_module()
    try:
        data = yaml.load(text, Loader=_loader())     # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ComposeError("%s is not valid YAML%s: %s" % (where, at, problem)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ComposeError("%s: the top level must be a mapping (services:, ...)" % where)
    return data


# -- .env and interpolation ---------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env_file(path, lookup=None, required=True):
    """KEY=VALUE lines (``export`` allowed, # comments, '...' taken as is,
    "..." with \\n escapes and ${VAR}), as Compose reads .env and
    env_file; a line with a bare KEY takes it from ``lookup``."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        if required:
            raise ComposeError("env file %s not found" % path) from None
        return out
    except OSError as exc:
        raise ComposeError("cannot read env file %s: %s" % (path, exc.strerror)) from None

    def env(name):
        if name in out:
            return out[name]
        return lookup(name) if lookup else None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[7:].lstrip()
        key, sep, value = text.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise ComposeError("%s, line %d: %r is not VAR=VALUE" % (path, number, line))
        if not sep:
            found = lookup(key) if lookup else None
            if found is not None:
                out[key] = found
            continue
        value = value.strip()
        if value[:1] == "'" and value.count("'") >= 2:
            value = value[1:value.index("'", 1)]
        elif value[:1] == '"' and len(value) > 1:
            end = 1
            while end < len(value) and value[end] != '"':
                end += 2 if value[end] == "\\" else 1
            body = value[1:end]
            body = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(
                m.group(1), m.group(1)), body)
            value = interpolate(body, env, "%s, line %d" % (path, number))
        else:
            hash_at = re.search(r"\s#", value)
            if hash_at:
                value = value[:hash_at.start()].rstrip()
            value = interpolate(value, env, "%s, line %d" % (path, number))
        out[key] = value
    return out


def interpolate(text, env, where, warned=None):
    """``text`` with its $VAR and ${...} replaced; ``env(name)`` is a
    value or None (unset)."""
    if "$" not in text:
        return text
    out, i, n = [], 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            depth, k = 1, j + 2
            while k < n and depth:
                if text.startswith("${", k):
                    depth, k = depth + 1, k + 2
                    continue
                if text[k] == "}":
                    depth -= 1
                k += 1
            if depth:
                raise ComposeError("%s: invalid interpolation format in %r" % (where, text),
                                   hint="close the ${ with a }, or write $$ for a dollar")
            out.append(_expand(text[j + 2:k - 1], env, where, warned))
            i = k
        else:
            m = _NAME.match(text, j + 1)
            if m:
                out.append(_value(m.group(), env, warned))
                i = m.end()
            else:
                out.append("$")
                i = j + 1
    return "".join(out)


def _value(name, env, warned):
    value = env(name)
    if value is None:
        if warned is None or name not in warned:
            sys.stderr.write('sandbox compose: warning: the "%s" variable is not set; '
                             'it is a blank string\n' % name)
            if warned is not None:
                warned.add(name)
        return ""
    return value


def _expand(body, env, where, warned):
    m = _NAME.match(body)
    if not m:
        raise ComposeError("%s: invalid interpolation format: ${%s}" % (where, body),
                           hint="a variable's name: letters, digits and _")
    name, rest = m.group(), body[m.end():]
    if not rest:
        return _value(name, env, warned)
    value = env(name)
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            operand = rest[len(op):]
            break
    else:
        raise ComposeError("%s: invalid interpolation format: ${%s}" % (where, body))
    unset = value is None or (op[0] == ":" and value == "")
    if op.endswith("-"):
        return interpolate(operand, env, where, warned) if unset else value
    if op.endswith("+"):
        return "" if unset else interpolate(operand, env, where, warned)
    if unset:
        message = interpolate(operand, env, where, warned) or "is not set"
        raise ComposeError("required variable %s is missing a value: %s" % (name, message))
    return value


def _interpolate_tree(node, env, where, warned):
    if isinstance(node, str):
        return interpolate(node, env, where, warned)
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, "%s, %s" % (where, k), warned)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where, warned) for v in node]
    return node


# -- finding and merging files ------------------------------------------------

def find_files(files, workdir):
    """The compose files to read, as absolute paths ('-' for stdin)."""
    if not files and os.environ.get("COMPOSE_FILE"):
        sep = os.environ.get("COMPOSE_PATH_SEPARATOR") or ":"
        files = [f for f in os.environ["COMPOSE_FILE"].split(sep) if f]
    if files:
        return [f if f == "-" else os.path.abspath(os.path.join(workdir, f)) for f in files]
    here = os.path.abspath(workdir)
    while True:
        for name in FILE_NAMES:
            path = os.path.join(here, name)
            if os.path.isfile(path):
                out = [path]
                for over in OVERRIDE_NAMES:
                    candidate = os.path.join(here, over)
                    if os.path.isfile(candidate):
                        out.append(candidate)
                        break
                return out
        parent = os.path.dirname(here)
        if parent == here:
            raise ComposeError("no configuration file provided: not found",
                               hint="write a compose.yaml here (or in a parent "
                                    "directory), or name one with -f FILE")
        here = parent


# Sequences that add up when files are merged (the rest are replaced).
_ADDED = ("ports", "expose", "dns", "dns_search", "dns_opt", "tmpfs", "cap_add", "cap_drop",
          "devices", "extra_hosts", "security_opt", "env_file", "group_add", "secrets",
          "configs", "profiles", "external_links", "links", "volumes_from")


def _merge_service(base, over):
    for key, value in over.items():
        old = base.get(key)
        if key == "volumes" and isinstance(old, list) and isinstance(value, list):
            targets = {_volume_target(v): i for i, v in enumerate(old)}
            merged = list(old)
            for v in value:
                t = _volume_target(v)
                if t in targets and t is not None:
                    merged[targets[t]] = v
                else:
                    merged.append(v)
            base[key] = merged
        elif key in _ADDED and isinstance(old, list) and isinstance(value, list):
            base[key] = old + [v for v in value if v not in old]
        elif key == "build" and isinstance(old, dict) and isinstance(value, dict):
            base[key] = _merge_maps(dict(old), value)
        elif isinstance(old, dict) and isinstance(value, dict) and key not in (
                "healthcheck",):
            base[key] = _merge_maps(dict(old), value)
        elif key == "healthcheck" and isinstance(old, dict) and isinstance(value, dict):
            base[key] = dict(old, **value)
        else:
            base[key] = value
    return base


def _merge_maps(base, over):
    for key, value in over.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            base[key] = _merge_maps(dict(base[key]), value)
        else:
            base[key] = value
    return base


def _volume_target(v):
    if isinstance(v, dict):
        return v.get("target")
    if isinstance(v, str):
        parts = _split_volume(v)
        return parts[1] if len(parts) > 1 else parts[0]
    return None


def _split_volume(text):
    """"SRC:DST[:MODE]" -> parts (a Windows drive letter is not ours)."""
    return text.split(":")


def _as_mapping(value, what, where):
    """A list of "K=V" (or "K") or a mapping -> {K: V or None}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (None if v is None else _scalar_text(v)) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            key, sep, v = str(item).partition("=")
            out[key] = v if sep else None
        return out
    raise ComposeError("%s: %s must be a mapping or a list of KEY=VALUE" % (where, what))


def _scalar_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _prepare_service(name, svc, where):
    """The list-or-mapping fields of one file's service as mappings (so
    that files merge key by key)."""
    if svc is None:
        svc = {}
    if not isinstance(svc, dict):
        raise ComposeError("%s: service %s must be a mapping" % (where, name))
    svc = dict(svc)
    for key in ("environment", "labels", "annotations", "sysctls"):
        if key in svc:
            svc[key] = _as_mapping(svc[key], key, "%s: service %s" % (where, name))
    if isinstance(svc.get("build"), str):
        svc["build"] = {"context": svc["build"]}
    if isinstance(svc.get("build"), dict):
        build = dict(svc["build"])
        for key in ("args", "labels"):
            if key in build:
                build[key] = _as_mapping(build[key], "build." + key, where)
        svc["build"] = build
    if isinstance(svc.get("depends_on"), list):
        svc["depends_on"] = {d: {"condition": "service_started", "required": True}
                             for d in svc["depends_on"]}
    if isinstance(svc.get("networks"), list):
        svc["networks"] = {n: None for n in svc["networks"]}
    if isinstance(svc.get("extra_hosts"), dict):
        svc["extra_hosts"] = ["%s:%s" % kv for kv in svc["extra_hosts"].items()]
    for key in ("env_file", "dns", "dns_search", "tmpfs", "dns_opt"):
        if isinstance(svc.get(key), str):
            svc[key] = [svc[key]]
    return svc


def _extended(svc, services, file_dir, project_dir, where, read, seen):
    """``svc`` over the service its ``extends:`` names (in the same file,
    ``services``, or in ``extends.file``), that one's extends first; the
    relative paths of a service from another file start from that file's
    directory."""
    ext = svc.get("extends")
    if not ext:
        return svc
    if isinstance(ext, str):
        ext = {"service": ext}
    if not isinstance(ext, dict) or not ext.get("service"):
        raise ComposeError("%s: extends needs a service" % where)
    if ext.get("file"):
        path = os.path.normpath(os.path.join(file_dir, ext["file"]))
        data, base_where = read(path)
        others, base_dir = data.get("services") or {}, os.path.dirname(path)
    else:
        path, others, base_dir, base_where = None, services, file_dir, where
    name = ext["service"]
    if (path, name) in seen:
        raise ComposeError("%s: extends makes a cycle through service %s" % (where, name))
    if name not in others:
        raise ComposeError("%s: cannot extend service %s: it is not there" % (
            base_where, name))
    import copy
    base = _prepare_service(name, copy.deepcopy(others[name]), base_where)
    base = _extended(base, others, base_dir, project_dir, base_where, read,
                     seen + ((path, name),))
    if base_dir != project_dir:
        _rebase(base, base_dir)
    return _merge_service(base, {k: v for k, v in svc.items() if k != "extends"})


def _included(item, here, read):
    """The resources of one `include:` entry (a path, or {path (one or a
    list), project_directory}): {section: {name: spec}}, the services'
    relative paths from the included file's directory (or its
    project_directory), its own includes too."""
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, dict) or not item.get("path"):
        raise ComposeError("include: %r needs a path" % (item,))
    files = item["path"] if isinstance(item["path"], list) else [item["path"]]
    out = {}
    for f in files:
        path = os.path.normpath(os.path.join(here, os.path.expanduser(f)))
        data, where = read(path)
        top = os.path.dirname(path)
        base = os.path.normpath(os.path.join(here, item["project_directory"])) \
            if item.get("project_directory") else top
        for nested in data.get("include") or []:
            for section, entries in _included(nested, top, read).items():
                out.setdefault(section, {}).update(entries)
        services = data.get("services") or {}
        for name, svc in services.items():
            svc = _prepare_service(name, svc, where)
            svc = _extended(svc, services, top, base, where, read, ())
            _rebase(svc, base)
            merged = out.setdefault("services", {})
            merged[name] = _merge_service(merged[name], svc) if name in merged else svc
        for section in ("networks", "volumes", "secrets", "configs"):
            for k, v in (data.get(section) or {}).items():
                v = dict(v or {})
                if v.get("file"):
                    v["file"] = os.path.normpath(os.path.join(base, os.path.expanduser(
                        str(v["file"]))))
                out.setdefault(section, {})[k] = v
    return out


def _rebase(svc, directory):
    """A service's relative host paths as absolute ones from ``directory``."""
    def absolute(p):
        return os.path.normpath(os.path.join(directory, p)) if str(p)[:1] == "." else p
    if isinstance(svc.get("build"), dict) and svc["build"].get("context"):
        svc["build"]["context"] = os.path.join(directory, os.path.expanduser(
            str(svc["build"]["context"])))
    if svc.get("env_file"):
        svc["env_file"] = [dict(e, path=os.path.join(directory, e["path"]))
                           if isinstance(e, dict) else os.path.join(directory, e)
                           for e in svc["env_file"]]
    volumes = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str) and ":" in v:
            source, rest = v.split(":", 1)
            v = absolute(source) + ":" + rest
        elif isinstance(v, dict) and v.get("type") == "bind" and v.get("source"):
            v = dict(v, source=absolute(v["source"]))
        volumes.append(v)
    if volumes:
        svc["volumes"] = volumes


class Project:
    """A loaded project: ``name``, ``workdir`` (the project directory),
    ``files``, ``services`` {name: normalized dict}, ``networks``,
    ``volumes``, ``secrets``, ``configs`` (top-level, {name: dict}),
    ``env`` (the variables interpolation saw)."""

    def __init__(self, name, workdir, files, model, env):
        self.name = name
        self.workdir = workdir
        self.files = files
        self.env = env
        self.services = model.get("services") or {}
        self.networks = model.get("networks") or {}
        self.volumes = model.get("volumes") or {}
        self.secrets = model.get("secrets") or {}
        self.configs = model.get("configs") or {}
        self.model = model

    def service(self, name):
        try:
            return self.services[name]
        except KeyError:
            raise ComposeError("no such service: %s" % name,
                               hint="the services are: %s" % ", ".join(sorted(self.services))
                               ) from None

    def selected(self, names):
        """Services named (all when none), checked."""
        if not names:
            return list(self.services)
        for n in names:
            self.service(n)
        return list(names)

    def with_dependencies(self, names):
        """``names`` and all they depend on, dependencies first."""
        order, seen, path = [], set(), []

        def visit(n):
            if n in seen:
                return
            if n in path:
                raise ComposeError("dependency cycle: %s" % " -> ".join(path[path.index(n):] + [n]))
            path.append(n)
            for dep in dependencies(self.service(n)):
                if dep not in self.services:
                    required = (self.services[n].get("depends_on") or {}).get(dep, {})
                    if isinstance(required, dict) and required.get("required") is False:
                        continue
                    raise ComposeError("service %s depends on undefined service %s" % (n, dep))
                visit(dep)
            path.pop()
            seen.add(n)
            order.append(n)
        for n in names:
            visit(n)
        return order

    def network_name(self, key):
        return self._resource_name(self.networks, key)

    def volume_name(self, key):
        return self._resource_name(self.volumes, key)

    def _resource_name(self, section, key):
        """A network's or volume's own name: its `name:`, an external one's
        key, else PROJECT_KEY."""
        spec = section.get(key) or {}
        if spec.get("name"):
            return spec["name"]
        if spec.get("external"):
            return key
        return "%s_%s" % (self.name, key)

    def image_of(self, name):
        """The image a service runs: its `image:`, else the one its build
        makes (PROJECT-SERVICE, as Compose names it)."""
        svc = self.service(name)
        return svc.get("image") or "%s-%s" % (self.name, name)


def dependencies(svc):
    """Services ``svc`` needs started first: depends_on, network_mode
    service:X, volumes_from X."""
    deps = list((svc.get("depends_on") or {}).keys())
    mode = svc.get("network_mode") or ""
    if mode.startswith("service:"):
        deps.append(mode[8:])
    for v in svc.get("volumes_from") or []:
        if not v.startswith("container:"):
            deps.append(v.split(":")[0])
    for link in svc.get("links") or []:
        deps.append(str(link).split(":")[0])       # (legacy links: a dependency)
    return [d for i, d in enumerate(deps) if d not in deps[:i]]


def normalize_name(text):
    name = re.sub(r"[^a-z0-9_-]", "", text.lower())
    return name.lstrip("_-")


def load(files=(), project_name=None, project_directory=None, env_files=(), profiles=(),
         workdir=None, targets=()):
    """The Project of the compose files (see the module's docstring).
    ``targets``: the services the command line names, whose profiles are
    then enabled (the Compose Specification's "explicitly targeted")."""
    workdir = workdir or os.getcwd()
    paths = find_files(list(files), workdir)
    first = next((p for p in paths if p != "-"), None)
    projdir = os.path.abspath(project_directory or (os.path.dirname(first) if first else workdir))
    dotenv = {}
    for path in (env_files or [os.path.join(projdir, ".env")]):
        dotenv.update(parse_env_file(os.path.join(workdir, path), os.environ.get,
                                     required=bool(env_files)))

    def env(name):
        return os.environ.get(name, dotenv.get(name))
    warned = set()

    def read(path):
        where = "stdin" if path == "-" else os.path.relpath(path, workdir)
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as exc:
            raise ComposeError("cannot read %s: %s" % (path, exc.strerror)) from None
        data = _interpolate_tree(parse_yaml(text, where), env, where, warned)
        if not isinstance(data.get("services") or {}, dict):
            raise ComposeError("%s: services must be a mapping" % where)
        return data, where
    model = {}
    included = set()
    for path in paths:
        data, where = read(path)
        services = data.get("services") or {}
        here = os.path.dirname(path) if path != "-" else workdir
        for item in data.get("include") or []:
            for section, entries in _included(item, here, read).items():
                target = model.setdefault(section, {})
                for k, v in entries.items():
                    if k in target:
                        raise ComposeError("%s: include: %s %s is defined twice"
                                           % (where, section[:-1], k))
                    target[k] = v
                    included.add((section, k))
        for key, value in data.items():
            if key == "services":
                merged = model.setdefault("services", {})
                for name, svc in services.items():
                    if ("services", name) in included:
                        raise ComposeError("%s: service %s conflicts with an included one"
                                           % (where, name))
                    svc = _prepare_service(name, svc, where)
                    svc = _extended(svc, services, here, here, where, read, ())
                    if name in merged:
                        _merge_service(merged[name], svc)
                    else:
                        merged[name] = svc
            elif key in ("networks", "volumes", "secrets", "configs"):
                section = model.setdefault(key, {})
                for k, v in (value or {}).items():
                    section[k] = _merge_maps(dict(section.get(k) or {}), v or {})
            elif key.startswith("x-") or key in ("version", "name"):
                model[key] = value
            elif key == "include":
                pass                    # (above)
            else:
                raise ComposeError("%s: unknown top-level key %r" % (where, key),
                                   hint="services, networks, volumes, secrets, configs, "
                                        "name, or an x- extension")
    name = normalize_name(project_name or os.environ.get("COMPOSE_PROJECT_NAME")
                          or model.get("name") or os.path.basename(projdir))
    if not name:
        raise ComposeError("no project name", hint="give one with -p NAME")
    if project_name and name != project_name:
        raise UsageError("invalid project name %r" % project_name,
                         hint="lowercase letters, digits, dashes and underscores, "
                              "starting with a letter or digit")
    project = Project(name, projdir, paths, model, env)
    _normalize(project, profiles, targets)
    return project


# -- normalization ------------------------------------------------------------

SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose",
    "volumes", "volumes_from", "tmpfs", "networks", "network_mode", "depends_on", "restart",
    "container_name", "hostname", "domainname", "user", "working_dir", "labels",
    "annotations", "healthcheck", "cap_add", "cap_drop", "privileged", "read_only", "init",
    "stdin_open", "tty", "extra_hosts", "dns", "dns_search", "dns_opt", "sysctls", "ulimits",
    "devices", "group_add", "pid", "ipc", "uts", "userns_mode", "cgroup", "mem_limit",
    "memswap_limit", "mem_reservation", "cpus", "cpu_shares", "cpu_period", "cpu_quota",
    "cpuset", "pids_limit", "shm_size", "stop_signal", "stop_grace_period",
    "oom_score_adj", "logging", "deploy", "platform", "pull_policy", "profiles", "scale",
    "secrets", "configs", "security_opt", "links", "external_links", "mac_address",
    "blkio_config", "oom_kill_disable", "develop", "attach", "extends",
}


def _normalize(project, profiles, targets=()):
    """Check the services and drop those of profiles not enabled (a
    targeted service's profiles are)."""
    active = set(profiles or [p for p in os.environ.get("COMPOSE_PROFILES", "").split(",") if p])
    for name in targets or ():
        wanted = (project.services.get(name) or {}).get("profiles") or []
        if isinstance(wanted, list):
            active.update(str(p) for p in wanted)
    for name in list(project.services):
        svc = project.services[name]
        unknown = sorted(k for k in svc if k not in SERVICE_KEYS and not k.startswith("x-"))
        if unknown:
            raise ComposeError("service %s: unknown key %s" % (name, ", ".join(unknown)),
                               hint="see the Compose Specification's service keys")
        wanted = svc.get("profiles") or []
        if wanted and not (active & set(wanted)) and "*" not in active:
            del project.services[name]
            continue
        if svc.get("pull_policy") == "if_not_present":
            svc["pull_policy"] = "missing"          # (Compose's other name for it)
        if not svc.get("image") and not svc.get("build"):
            raise ComposeError("service %s has neither an image nor a build context" % name)
        if isinstance(svc.get("build"), dict):
            build = svc["build"]
            build["context"] = os.path.normpath(os.path.join(
                project.workdir, os.path.expanduser(str(build.get("context") or "."))))
        for key in ("command", "entrypoint"):
            if isinstance(svc.get(key), str):
                try:
                    svc[key] = shlex.split(svc[key])
                except ValueError as exc:
                    raise ComposeError("service %s: %s: %s" % (name, key, exc)) from None
            elif svc.get(key) is not None:
                svc[key] = [_scalar_text(a) for a in svc[key]]
        env = {}
        for item in svc.get("env_file") or []:
            path, required = (item.get("path"), item.get("required", True)) \
                if isinstance(item, dict) else (item, True)
            env.update(parse_env_file(os.path.join(project.workdir, path), os.environ.get,
                                      required=required))
        for key, value in (svc.get("environment") or {}).items():
            if value is None:
                value = os.environ.get(key, env.get(key))
            if value is not None:
                env[key] = value
            else:
                env.pop(key, None)
        if env:
            svc["environment"] = env
        else:
            svc.pop("environment", None)
        if svc.get("container_name") and scale_of(svc) > 1:
            raise ComposeError("service %s: container_name %s cannot serve %d replicas"
                               % (name, svc["container_name"], scale_of(svc)))
    for name, svc in project.services.items():
        for dep in dependencies(svc):
            if dep not in project.services:
                cond = (svc.get("depends_on") or {}).get(dep)
                if isinstance(cond, dict) and cond.get("required") is False:
                    continue
                raise ComposeError("service %s depends on undefined service %s" % (name, dep),
                                   hint="or its profile is not enabled (--profile)")
        for item in svc.get("volumes") or []:
            source = named_volume(item)
            if source is not None and source not in project.volumes:
                raise ComposeError("service %s refers to undefined volume %s" % (name, source),
                                   hint="declare it under the top-level volumes:")
        for kind in ("secrets", "configs"):
            for item in svc.get(kind) or []:
                source = item.get("source") if isinstance(item, dict) else item
                if source not in getattr(project, kind):
                    raise ComposeError("service %s refers to undefined %s %s"
                                       % (name, kind[:-1], source),
                                       hint="declare it under the top-level %s:" % kind)
        for key in (svc.get("networks") or {}):
            if key not in project.networks and key != "default":
                raise ComposeError("service %s refers to undefined network %s" % (name, key),
                                   hint="declare it under the top-level networks:")


def named_volume(item):
    """The named volume a service's volumes: entry mounts, or None (a
    bind mount, tmpfs or an anonymous volume)."""
    if isinstance(item, dict):
        return item.get("source") if (item.get("type") or "volume") == "volume" else None
    parts = str(item).split(":")
    if len(parts) < 2 or parts[0][:1] in ("/", ".", "~"):
        return None
    return parts[0]


def scale_of(svc):
    """How many containers a service runs (scale:, deploy.replicas)."""
    deploy = svc.get("deploy") or {}
    value = svc.get("scale", deploy.get("replicas", 1))
    return 1 if value is None else int(value)
