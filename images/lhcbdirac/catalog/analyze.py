"""Static analysis of an installed DIRAC release (site-packages) for the
service catalog (package catalog). Stdlib only; nothing of DIRAC is imported
or executed: the sources are parsed with ast.

    python3 -I -c "$(cat analyze.py)" SITE_PACKAGES EXT... [--handler MODULE:CLASS]...

prints one JSON document (sorted keys) describing every service handler
module of the given extensions (highest priority first) and every database
class their initialisation reaches. The Go side (catalog.go) turns it into
the catalog; the rules are documented there and in docs/services.md.

What "initialisation" means follows DIRAC's own loaders:
- DIPS (DIRAC.Core.DISET.private.Service._loadHandlerInit): every
  initializeHandler defined along the handler class's ancestry, then the
  module-level function initialize<HandlerClass>;
- HTTPS (DIRAC.Core.Tornado.Server.private.BaseRequestHandler.__initialize):
  the initializeHandler the class resolves to, run at the first request;
- both: the module's top-level statements (run at import).
Within those bodies calls are followed (functions, methods of the class,
constructors, DIRAC's ObjectLoader) with constant arguments propagated, so
defaults such as getServiceOption(info, "ResourceStatusDB", "ResourceStatusDB")
reach the loader they feed.
"""

import ast
import json
import os
import re
import sys

UNKNOWN = object()
MAX_DEPTH = 6

# Python drivers and the server each one talks to: how a database class's
# backend is read from the modules along its class hierarchy.
DRIVERS = {
    "MySQLdb": "MySQL",
    "opensearchpy": "OpenSearch",
    "elasticsearch": "OpenSearch",
    "elasticsearch_dsl": "OpenSearch",
    "oracledb": "Oracle",
    "cx_Oracle": "Oracle",
}
# Functions that read a database's connection parameters from the CS,
# given its full name System/NameDB (or System, NameDB).
DB_PARAM_FUNCS = {"getDBParameters", "getElasticDBParameters", "getDatabaseSection", "_initializeConnection"}
# Methods that create a database's tables when they are missing.
TABLE_CREATORS = {"_createTables", "createTables", "create_all", "_createTablesIfNotThere", "_checkTable"}
# Option readers: (positional index of the option name, of the default).
OPTION_READERS = {"getServiceOption": (1, 2), "srv_getCSOption": (0, 1), "getCSOption": (0, 1)}
CLIENT_BASES = {"DIRAC.Core.Base.Client.Client", "DIRAC.Core.DISET.RPCClient.RPCClient",
                "DIRAC.Core.DISET.MessageClient.MessageClient", "DIRAC.Core.Tornado.Client.TornadoClient.TornadoClient"}
DIPS_BASE = "DIRAC.Core.DISET.RequestHandler.RequestHandler"
HTTPS_BASE = "DIRAC.Core.Tornado.Server.TornadoService.TornadoService"
FULLNAME_RE = re.compile(r"^[A-Z][A-Za-z0-9]*/[A-Za-z0-9_]+$")


class Module:
    def __init__(self, name, path, tree, is_pkg):
        self.name, self.path, self.tree = name, path, tree
        self.package = name if is_pkg else name.rpartition(".")[0]
        self.defs = {}  # top-level functions and classes
        self.imports = {}  # local name -> qualified name
        self.consts = {}  # top-level NAME = constant
        self.third_party = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, ast.Constant):
                    self.consts[node.targets[0].id] = node.value.value
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.add_import(node, top=node in tree.body)

    def add_import(self, node, top=True, into=None):
        into = self.imports if into is None else into
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    into.setdefault(a.asname, a.name)
                else:
                    into.setdefault(a.name.split(".")[0], a.name.split(".")[0])
                self.third_party.add(a.name.split(".")[0])
        else:
            base = node.module or ""
            if node.level:
                parts = self.package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                self.third_party.add(base.split(".")[0])
            for a in node.names:
                into.setdefault(a.asname or a.name, f"{base}.{a.name}")


class Repo:
    def __init__(self, root, extensions):
        self.root, self.extensions = root, extensions
        self.modules = {}
        self.db_info = {}
        self.client_info = {}

    def module(self, name):
        if name in self.modules:
            return self.modules[name]
        mod = None
        base = os.path.join(self.root, *name.split("."))
        for path, is_pkg in ((base + ".py", False), (os.path.join(base, "__init__.py"), True)):
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    src = f.read()
                try:
                    tree = ast.parse(src, filename=path)
                except SyntaxError:
                    tree = ast.parse("")
                mod = Module(name, path, tree, is_pkg)
                break
        self.modules[name] = mod
        return mod

    def resolve(self, qual):
        """qualified name -> ("module", Module) | ("def", Module, node) | None"""
        if self.module(qual):
            return ("module", self.module(qual))
        modname, _, attr = qual.rpartition(".")
        seen = set()
        while modname and qual not in seen:
            seen.add(qual)
            mod = self.module(modname)
            if mod is None:
                return None
            if attr in mod.defs:
                return ("def", mod, mod.defs[attr])
            if attr in mod.imports:  # re-exported
                qual = mod.imports[attr]
                if self.module(qual):
                    return ("module", self.module(qual))
                modname, _, attr = qual.rpartition(".")
                continue
            return None
        return None

    def object_loader(self, import_string, obj_name):
        """DIRAC's ObjectLoader.loadObject: the string as given, then under
        each extension by priority."""
        if not obj_name:
            obj_name = import_string.split(".")[-1]
        for root in [""] + [e for e, _ in self.extensions]:
            modname = f"{root}.{import_string}" if root else import_string
            mod = self.module(modname)
            if mod is not None:
                r = self.resolve(f"{modname}.{obj_name}")
                if r and r[0] == "def":
                    return f"{r[1].name}.{r[2].name}"
                return None
        return None

    def lookup(self, mod, name, local_imports=None):
        if local_imports and name in local_imports:
            return local_imports[name]
        if name in mod.defs:
            return f"{mod.name}.{name}"
        if name in mod.imports:
            return mod.imports[name]
        return None

    def classdef(self, qual):
        r = self.resolve(qual) if qual else None
        if r and r[0] == "def" and isinstance(r[2], ast.ClassDef):
            return r[1], r[2]
        return None

    def mro(self, qual, seen=None):
        """Depth-first, left-to-right ancestry (close to Python's MRO for
        DIRAC's shallow hierarchies), as qualified names; classes outside
        the site-packages end the walk."""
        seen = seen if seen is not None else []
        if qual in seen:
            return seen
        seen.append(qual)
        cd = self.classdef(qual)
        if not cd:
            return seen
        mod, node = cd
        for b in node.bases:
            bq = self.expr_qualname(mod, b)
            if bq:
                self.mro(bq, seen)
        return seen

    def expr_qualname(self, mod, expr, local_imports=None):
        if isinstance(expr, ast.Name):
            return self.lookup(mod, expr.id, local_imports)
        if isinstance(expr, ast.Attribute):
            left = self.expr_qualname(mod, expr.value, local_imports)
            if left:
                return f"{left}.{expr.attr}"
        return None

    def method(self, class_qual, name, start_after=None):
        """The class (qualified) and node defining method name, along the MRO."""
        chain = self.mro(class_qual)
        if start_after is not None:
            if start_after not in chain:
                return None
            chain = chain[chain.index(start_after) + 1 :]
        for q in chain:
            cd = self.classdef(q)
            if not cd:
                continue
            for n in cd[1].body:
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name:
                    return q, cd[0], n
        return None


class Obj:
    """A value the evaluator tracks: a class, an instance, a loaded object."""

    def __init__(self, kind, qual, event=None):
        self.kind, self.qual, self.event = kind, qual, event


class Context:
    def __init__(self):
        self.dbs = []  # events: dict(class, guarded, via, created_by_handler)
        self.clients = []
        self.options = {}
        self.fullnames = []
        self.creates = False
        self.drivers = set()
        self.loaded = []
        self.cwd_writes = []
        self.paths = []
        self.instances = []


class Analyzer:
    def __init__(self, repo):
        self.repo = repo

    # ---- expressions -------------------------------------------------
    def ev(self, e, env, mod):
        if isinstance(e, ast.Constant):
            return e.value
        if isinstance(e, ast.Name):
            if e.id in env:
                return env[e.id]
            return mod.consts.get(e.id, UNKNOWN)
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id in ("self", "cls"):
            return env.get(f"self.{e.attr}", UNKNOWN)
        if isinstance(e, ast.JoinedStr):
            out = []
            for v in e.values:
                x = self.ev(v.value, env, mod) if isinstance(v, ast.FormattedValue) else v.value
                if x is UNKNOWN or isinstance(x, Obj):
                    return UNKNOWN
                out.append(str(x))
            return "".join(out)
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Add):
            a, b = self.ev(e.left, env, mod), self.ev(e.right, env, mod)
            if isinstance(a, str) and isinstance(b, str):
                return a + b
        if isinstance(e, (ast.Tuple, ast.List)):
            vals = [self.ev(x, env, mod) for x in e.elts]
            return tuple(vals)
        if isinstance(e, ast.Subscript):
            v = self.ev(e.value, env, mod)
            if isinstance(v, Obj) and v.kind == "loaded":
                return Obj("class", v.qual)
        return UNKNOWN

    # ---- functions ---------------------------------------------------
    def run(self, mod, func, bindings, ctx, depth, cls_qual=None, guarded=False):
        if depth > MAX_DEPTH:
            return UNKNOWN
        env = {}
        local_imports = {}
        args = func.args
        params = [a.arg for a in args.posonlyargs + args.args]
        defaults = args.defaults
        for p, d in zip(params[len(params) - len(defaults):], defaults):
            env[p] = self.ev(d, {}, mod)
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            if d is not None:
                env[a.arg] = self.ev(d, {}, mod)
        env.update(bindings)
        state = dict(mod=mod, env=env, imports=local_imports, ctx=ctx, depth=depth, cls=cls_qual, ret=[])
        self.block(func.body, state, guarded)
        rets = [r for r in state["ret"] if r is not UNKNOWN]
        return rets[0] if rets else UNKNOWN

    def block(self, stmts, st, guarded):
        for s in stmts:
            self.stmt(s, st, guarded)

    def stmt(self, s, st, guarded):
        mod, env = st["mod"], st["env"]
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            mod.add_import(s, into=st["imports"])
            return
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(s, ast.Try):
            tolerant = all(self.tolerant(h.body) for h in s.handlers) and s.handlers
            self.block(s.body, st, guarded or bool(tolerant))
            for h in s.handlers:
                self.block(h.body, st, guarded)
            self.block(s.orelse, st, guarded)
            self.block(s.finalbody, st, guarded)
            return
        if isinstance(s, ast.If):
            self.expr(s.test, st, guarded)
            t = self.truth(s.test, env, mod)
            if t is not False:
                self.block(s.body, st, guarded)
            if t is not True:
                self.block(s.orelse, st, guarded)
            return
        if isinstance(s, (ast.For, ast.While, ast.With, ast.AsyncWith, ast.AsyncFor)):
            for field in ("test", "iter"):
                if getattr(s, field, None) is not None:
                    self.expr(getattr(s, field), st, guarded)
            for item in getattr(s, "items", []):
                self.expr(item.context_expr, st, guarded)
            self.block(s.body, st, guarded)
            self.block(getattr(s, "orelse", []), st, guarded)
            return
        if isinstance(s, ast.Assign):
            v = self.expr(s.value, st, guarded)
            for t in s.targets:
                self.bind(t, v, s.value, st)
            return
        if isinstance(s, (ast.AnnAssign, ast.AugAssign)):
            if s.value is not None:
                v = self.expr(s.value, st, guarded)
                if isinstance(s, ast.AnnAssign):
                    self.bind(s.target, v, s.value, st)
            return
        if isinstance(s, ast.Return):
            if s.value is not None:
                st["ret"].append(self.expr(s.value, st, guarded))
            return
        if isinstance(s, ast.Expr):
            self.expr(s.value, st, guarded)
            return
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.expr):
                self.expr(child, st, guarded)

    def truth(self, e, env, mod):
        """True/False when a condition is decided by constants, else None."""
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
            t = self.truth(e.operand, env, mod)
            return None if t is None else not t
        if isinstance(e, ast.Compare) and len(e.ops) == 1:
            a, b = self.ev(e.left, env, mod), self.ev(e.comparators[0], env, mod)
            if a is UNKNOWN or b is UNKNOWN or isinstance(a, Obj) or isinstance(b, Obj):
                return None
            op = e.ops[0]
            try:
                if isinstance(op, ast.In):
                    return a in b
                if isinstance(op, ast.NotIn):
                    return a not in b
                if isinstance(op, (ast.Eq, ast.Is)):
                    return a == b
                if isinstance(op, (ast.NotEq, ast.IsNot)):
                    return a != b
            except TypeError:
                return None
        return None

    @staticmethod
    def tolerant(body):
        """An except clause that carries on: no raise, no return of an error."""
        for n in body:
            for x in ast.walk(n):
                if isinstance(x, ast.Raise):
                    return False
                if isinstance(x, ast.Return):
                    return False
        return True

    def bind(self, target, value, value_expr, st):
        env = st["env"]
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in ("self", "cls"):
            env[f"self.{target.attr}"] = value
            if isinstance(value, Obj) and value.kind == "instance" and value.event is not None:
                value.event.setdefault("attrs", []).append(target.attr)
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, tuple) and len(value) == len(target.elts):
                for t, v in zip(target.elts, value):
                    self.bind(t, v, None, st)
            else:
                for t in target.elts:
                    self.bind(t, UNKNOWN, None, st)

    def expr(self, e, st, guarded):
        """Evaluate, following the calls inside e; returns its value."""
        if isinstance(e, ast.Call):
            for a in list(e.args) + [k.value for k in e.keywords]:
                self.expr(a, st, guarded)
            return self.call(e, st, guarded)
        if isinstance(e, ast.Subscript) and isinstance(e.value, ast.Call):
            v = self.expr(e.value, st, guarded)  # loadObject(...)["Value"]
            self.expr(e.slice, st, guarded)
            if isinstance(v, Obj) and v.kind == "loaded":
                return Obj("class", v.qual)
            return UNKNOWN
        for child in ast.iter_child_nodes(e):
            if isinstance(child, ast.expr):
                self.expr(child, st, guarded)
        if isinstance(e, ast.Lambda):
            return UNKNOWN
        return self.ev(e, st["env"], st["mod"])

    def call(self, c, st, guarded):
        mod, env, ctx, depth = st["mod"], st["env"], st["ctx"], st["depth"]
        f = c.func
        argv = [self.ev(a, env, mod) for a in c.args]
        kw = {k.arg: self.ev(k.value, env, mod) for k in c.keywords if k.arg}
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None

        if name in OPTION_READERS:
            i, j = OPTION_READERS[name]
            opt = argv[i] if len(argv) > i else kw.get("optionName", UNKNOWN)
            dflt = argv[j] if len(argv) > j else kw.get("defaultValue", UNKNOWN)
            if isinstance(opt, str):
                ctx.options.setdefault(opt, dflt if not isinstance(dflt, Obj) else UNKNOWN)
            return dflt
        if name == "getValue" and c.args and isinstance(c.args[0], ast.JoinedStr):
            parts = c.args[0].values
            if parts and isinstance(parts[0], ast.FormattedValue) and isinstance(parts[-1], ast.Constant):
                opt = str(parts[-1].value).lstrip("/")
                if "/" not in opt and opt:
                    dflt = argv[1] if len(argv) > 1 else UNKNOWN
                    ctx.options.setdefault(opt, dflt)
                    return dflt
        if name in DB_PARAM_FUNCS:
            vals = [v for v in argv if isinstance(v, str)]
            if len(vals) == 2 and "/" not in vals[0]:
                vals = [f"{vals[0]}/{vals[1]}"]
            for v in vals:
                if FULLNAME_RE.match(v):
                    ctx.fullnames.append(v)
            return UNKNOWN
        if name in TABLE_CREATORS:
            target = f.value if isinstance(f, ast.Attribute) else None
            tv = self.ev(target, env, mod) if target is not None else UNKNOWN
            if isinstance(tv, Obj) and tv.kind == "instance" and tv.event is not None:
                tv.event["created_by_handler"] = True
            else:
                ctx.creates = True
            return UNKNOWN
        if name == "create" and isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) and f.value.attr == "__table__":
            ctx.creates = True  # SQLAlchemy: Model.__table__.create(engine)
            return UNKNOWN
        if name in ("_query", "_update") and argv and isinstance(argv[0], str) and "CREATE TABLE" in argv[0].upper():
            ctx.creates = True
            return UNKNOWN
        if name == "loadObject":
            imp = argv[0] if argv else kw.get("importString", UNKNOWN)
            obj = argv[1] if len(argv) > 1 else kw.get("objName", "")
            if isinstance(imp, str) and isinstance(obj, str):
                q = self.repo.object_loader(imp, obj)
                if q:
                    ctx.loaded.append(q)
                    return Obj("loaded", q)
            return UNKNOWN
        if name in ("mkDir", "makedirs", "mkdir"):
            if argv and isinstance(argv[0], str):
                ctx.paths.append(argv[0])
            return UNKNOWN

        # What is called?
        target = None
        bound_self = None
        if isinstance(f, ast.Name):
            v = env.get(f.id, UNKNOWN)
            if isinstance(v, Obj) and v.kind == "class":
                target = v.qual
            else:
                target = self.repo.lookup(mod, f.id, st["imports"])
        elif isinstance(f, ast.Subscript):
            v = self.expr(f, st, guarded)
            if isinstance(v, Obj) and v.kind == "class":
                target = v.qual
        elif isinstance(f, ast.Attribute):
            base = f.value
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super" and st["cls"]:
                m = self.repo.method(st["cls"], f.attr, start_after=self.current_def_class(st))
                if m:
                    return self.run_method(m, c, st, guarded, bound=True)
                return UNKNOWN
            if isinstance(base, ast.Name) and base.id in ("self", "cls") and st["cls"]:
                if f"self.{f.attr}" in env and isinstance(env[f"self.{f.attr}"], Obj):
                    v = env[f"self.{f.attr}"]
                    if v.kind == "class":
                        target = v.qual
                else:
                    m = self.repo.method(st["cls"], f.attr)
                    if m:
                        return self.run_method(m, c, st, guarded, bound=True)
                    return UNKNOWN
            else:
                bq = self.repo.expr_qualname(mod, base, st["imports"])
                if bq:
                    cd = self.repo.classdef(bq)
                    if cd and c.args and isinstance(c.args[0], ast.Name) and c.args[0].id == "self" and st["cls"]:
                        # Base.__init__(self, ...)
                        m = self.repo.method(bq, f.attr)
                        if m:
                            return self.run_method(m, c, st, guarded, bound=True, skip_first=True)
                        return UNKNOWN
                    target = f"{bq}.{f.attr}"
        if not target:
            return UNKNOWN
        r = self.repo.resolve(target)
        if not r or r[0] != "def":
            return UNKNOWN
        tmod, node = r[1], r[2]
        q = f"{tmod.name}.{node.name}"
        if isinstance(node, ast.ClassDef):
            return self.instantiate(q, c, st, guarded)
        if depth < MAX_DEPTH:
            return self.run(tmod, node, self.bindings(node, argv, kw, skip=0), ctx, depth + 1, guarded=guarded)
        return UNKNOWN

    def current_def_class(self, st):
        return st.get("defclass") or st["cls"]

    def run_method(self, m, c, st, guarded, bound, skip_first=False):
        owner, mmod, node = m
        env = st["env"]
        argv = [self.ev(a, env, st["mod"]) for a in c.args]
        if skip_first:
            argv = argv[1:]
        kw = {k.arg: self.ev(k.value, env, st["mod"]) for k in c.keywords if k.arg}
        is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        b = self.bindings(node, argv, kw, skip=0 if is_static else 1)
        for k, v in env.items():
            if k.startswith("self."):
                b[k] = v
        if st["depth"] >= MAX_DEPTH:
            return UNKNOWN
        sub = dict(st)
        inner_state = {}
        res = self.run_in_class(mmod, node, b, st["ctx"], st["depth"] + 1, st["cls"], owner, guarded, inner_state)
        # attributes set by the method are visible to the caller
        for k, v in inner_state.get("env", {}).items():
            if k.startswith("self."):
                env[k] = v
        return res

    def run_in_class(self, mod, func, bindings, ctx, depth, cls_qual, defclass, guarded, out):
        env = {}
        args = func.args
        params = [a.arg for a in args.posonlyargs + args.args]
        for p, d in zip(params[len(params) - len(args.defaults):], args.defaults):
            env[p] = self.ev(d, {}, mod)
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            if d is not None:
                env[a.arg] = self.ev(d, {}, mod)
        env.update(bindings)
        st = dict(mod=mod, env=env, imports={}, ctx=ctx, depth=depth, cls=cls_qual, defclass=defclass, ret=[])
        self.block(func.body, st, guarded)
        out["env"] = env
        rets = [r for r in st["ret"] if r is not UNKNOWN]
        return rets[0] if rets else UNKNOWN

    @staticmethod
    def bindings(node, argv, kw, skip):
        args = node.args
        params = [a.arg for a in args.posonlyargs + args.args][skip:]
        b = {}
        for p, v in zip(params, argv):
            b[p] = v
        names = set(params) | {a.arg for a in args.kwonlyargs}
        for k, v in kw.items():
            if k in names:
                b[k] = v
        return b

    def instantiate(self, q, c, st, guarded):
        ctx = st["ctx"]
        chain = self.repo.mro(q)
        if self.is_db(q, chain):
            ev = {"class": q, "guarded": bool(guarded)}
            # constructor arguments that choose the database (FileCatalogDB(dbLocation))
            argv = [self.ev(a, st["env"], st["mod"]) for a in c.args]
            kw = {k.arg: self.ev(k.value, st["env"], st["mod"]) for k in c.keywords if k.arg}
            info = self.db(q, argv, kw)
            ev["key"] = info["key"]
            ctx.dbs.append(ev)
            return Obj("instance", q, ev)
        if any(b in CLIENT_BASES for b in chain) or q in CLIENT_BASES:
            argv = [self.ev(a, st["env"], st["mod"]) for a in c.args]
            kw = {k.arg: self.ev(k.value, st["env"], st["mod"]) for k in c.keywords if k.arg}
            svc = None
            for v in [kw.get("url"), kw.get("serverURL")] + argv[:1]:
                if isinstance(v, str) and FULLNAME_RE.match(v):
                    svc = v
                    break
            if svc is None:
                svc = self.client_service(q)
            ctx.clients.append({"class": q, "service": svc or "", "guarded": bool(guarded)})
            return Obj("instance", q)
        # Another class of the release: its constructor may open databases.
        if q.split(".")[0] in [e for e, _ in self.repo.extensions]:
            ctx.instances.append(q)
            m = self.repo.method(q, "__init__")
            if m and st["depth"] < MAX_DEPTH:
                argv = [self.ev(a, st["env"], st["mod"]) for a in c.args]
                kw = {k.arg: self.ev(k.value, st["env"], st["mod"]) for k in c.keywords if k.arg}
                self.run_in_class(m[1], m[2], self.bindings(m[2], argv, kw, 1), ctx, st["depth"] + 1, q, m[0], guarded, {})
        return Obj("instance", q)

    def is_db(self, q, chain):
        return ".DB." in q or any(x.startswith("DIRAC.Core.Base.") and x.endswith("DB") for x in chain[1:])

    def client_service(self, q):
        if q in self.repo.client_info:
            return self.repo.client_info[q]
        self.repo.client_info[q] = None
        svc = None
        for cq in self.repo.mro(q):
            cd = self.repo.classdef(cq)
            if not cd:
                continue
            for n in ast.walk(cd[1]):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "setServer" and n.args:
                    if isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
                        svc = n.args[0].value
                if isinstance(n, ast.Assign) and any(
                    (isinstance(t, ast.Name) and t.id == "serverURL") or (isinstance(t, ast.Attribute) and t.attr == "serverURL")
                    for t in n.targets
                ):
                    if isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
                        svc = n.value.value
                if isinstance(n, ast.keyword) and n.arg in ("url", "serverURL") and isinstance(n.value, ast.Constant):
                    if isinstance(n.value.value, str):
                        svc = n.value.value
            if svc:
                break
        if svc and not FULLNAME_RE.match(svc):
            svc = None
        self.repo.client_info[q] = svc
        return svc

    # ---- database classes -------------------------------------------
    def db(self, q, argv, kw):
        key = json.dumps([q, [a if isinstance(a, (str, int, float, bool, type(None))) else None for a in argv],
                          sorted((k, v) for k, v in kw.items() if isinstance(v, (str, int, float, bool, type(None))))])
        if key in self.repo.db_info:
            return self.repo.db_info[key]
        info = {"key": key, "class": q}
        self.repo.db_info[key] = info
        chain = self.repo.mro(q)
        ctx = Context()
        drivers = set()
        for cq in chain:
            cd = self.repo.classdef(cq)
            if cd:
                drivers |= {DRIVERS[m] for m in cd[0].third_party if m in DRIVERS}
        m = self.repo.method(q, "__init__")
        if m:
            self.run_in_class(m[1], m[2], self.bindings(m[2], argv, kw, 1), ctx, 1, q, m[0], False, {})
        # Composite classes (OracleBookkeepingDB, MultiAccountingDB) hold
        # other database objects: their backends are the parts'.
        parts = []
        for ev in ctx.dbs:
            p = self.repo.db_info.get(ev["key"])
            if p and p is not info:
                parts.append(ev["key"])
                drivers |= set(p["backends"])
        if not drivers and ctx.fullnames:
            drivers.add("MySQL")  # getDBParameters: DIRAC's MySQL parameters (SQLAlchemy classes)
        info.update({
            "mro": chain,
            "backends": sorted(drivers),
            "fullnames": sorted(set(ctx.fullnames)),
            "creates_tables": ctx.creates,
            "parts": sorted(set(parts)),
        })
        return info

    # ---- handlers ----------------------------------------------------
    def handler(self, modname, classname):
        mod = self.repo.module(modname)
        out = {"module": modname, "class": classname, "file": os.path.relpath(mod.path, self.repo.root)}
        q = f"{modname}.{classname}"
        chain = self.repo.mro(q)
        out["mro"] = chain
        out["found"] = self.repo.classdef(q) is not None
        kind = ""
        if HTTPS_BASE in chain:
            kind = "https"
        elif DIPS_BASE in chain:
            kind = "dips"
        out["protocol"] = kind
        ctx = Context()
        # module top level
        top = ast.Module(body=[s for s in mod.tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))], type_ignores=[])
        st = dict(mod=mod, env={}, imports={}, ctx=ctx, depth=1, cls=None, ret=[])
        self.block(top.body, st, False)
        inits = []
        if kind == "https":
            m = self.repo.method(q, "initializeHandler")
            if m and not m[0].startswith("DIRAC.Core."):
                inits.append(m)
        else:
            for cq in reversed(chain):
                if cq.startswith("DIRAC.Core."):
                    continue
                cd = self.repo.classdef(cq)
                if not cd:
                    continue
                for n in cd[1].body:
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "initializeHandler":
                        inits.append((cq, cd[0], n))
        out["init"] = [f"{c}.initializeHandler" for c, _, _ in inits]
        for owner, imod, node in inits:
            self.run_in_class(imod, node, {}, ctx, 1, q, owner, False, {})
        if kind == "dips":
            fn = mod.defs.get(f"initialize{classname}")
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out["init"].append(f"{modname}.{fn.name}")
                self.run(mod, fn, {}, ctx, 1)
        out["databases"] = dedupe(ctx.dbs, "key")
        out["clients"] = dedupe(ctx.clients, "class")
        out["options"] = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else None) if v is not UNKNOWN else None
                          for k, v in ctx.options.items()}
        out["paths"] = sorted(set(ctx.paths))
        out["instances"] = sorted(set(ctx.instances))
        return out


def dedupe(events, key):
    """One event per database (or client); it is optional only when every
    use of it is."""
    out = {}
    for e in events:
        k = e[key]
        if k not in out:
            out[k] = dict(e)
            out[k].pop("attrs", None)
        else:
            out[k]["guarded"] = out[k]["guarded"] and e["guarded"]
            if e.get("created_by_handler"):
                out[k]["created_by_handler"] = True
    return [out[k] for k in sorted(out)]


def extension_priority(repo, ext):
    mod = repo.module(ext)
    if mod is None:
        return None
    fn = mod.defs.get("extension_metadata")
    if not isinstance(fn, ast.FunctionDef):
        return None
    for n in ast.walk(fn):
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict):
            for k, v in zip(n.value.keys, n.value.values):
                if isinstance(k, ast.Constant) and k.value == "priority" and isinstance(v, ast.Constant):
                    return v.value
    return None


def main():
    root = sys.argv[1]
    names, extra_handlers = [], []
    args = iter(sys.argv[2:])
    for a in args:
        if a == "--handler":
            extra_handlers.append(next(args))
        else:
            names.append(a)
    repo = Repo(root, [])
    exts = []
    for n in names:
        exts.append((n, extension_priority(repo, n)))
    exts.sort(key=lambda e: (-(e[1] if isinstance(e[1], int) else 0), e[0]))
    repo.extensions = exts
    an = Analyzer(repo)
    handlers = []
    for ext, _ in exts:
        base = os.path.join(root, ext)
        if not os.path.isdir(base):
            continue
        for system in sorted(os.listdir(base)):
            sdir = os.path.join(base, system, "Service")
            if not system.endswith("System") or not os.path.isdir(sdir):
                continue
            for fn in sorted(os.listdir(sdir)):
                if fn.endswith("Handler.py") and os.path.isfile(os.path.join(sdir, fn)):
                    handlers.append(an.handler(f"{ext}.{system}.Service.{fn[:-3]}", fn[:-3]))
    for extra in extra_handlers:
        # handlers named by HandlerPath options (module path, class)
        modname, _, cls = extra.rpartition(":")
        if repo.module(modname) is not None:
            handlers.append(an.handler(modname, cls))
    dbs = {}
    for k, v in repo.db_info.items():
        v = dict(v)
        v.pop("key")
        dbs[k] = v
    gateway = None
    g = repo.module("DIRAC.Core.DISET.private.GatewayService")
    if g is not None:
        for n in ast.walk(g.tree):
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "GATEWAY_NAME" for t in n.targets):
                if isinstance(n.value, ast.Constant):
                    gateway = n.value.value
    print(json.dumps({"extensions": [{"name": e, "priority": p} for e, p in exts], "handlers": handlers,
                      "databases": dbs, "builtins": {"gateway": gateway}}, sort_keys=True, indent=1, default=str))


if __name__ == "__main__":
    main()
