"""The static screen (llm.screen) on its own: the routes found in the third review are refused
with a message naming them, and ordinary block and test code still passes.

Runs no sandbox (fast); tests/test_sandbox_escapes.py runs the same attacks end to end.
"""
import pytest

from llm.screen import screen_files, screen_source
from llm.screen_flow import fold_str

# the reviewer's getattr by data: functools.update_wrapper copies any attribute named in `assigned`
GET = '''import functools
_store = {}
class _Grab:
    def __setattr__(self, k, v):
        _store[k] = v
def get(obj, name):
    functools.update_wrapper(_Grab(), obj, assigned=(name,), updated=())
    return _store[name]
'''


def _problems(code: str, **files) -> list[str]:
    return screen_files({"test_gen.py": code, **files})


@pytest.mark.parametrize("code, what", [
    # 1. attribute access by data, and what it would reach
    (GET, "access to attribute 'update_wrapper'"),
    (GET, "defining '__setattr__'"),
    ("import functools\nfrom functools import update_wrapper\n", "import of 'update_wrapper' from 'functools'"),
    ("import functools\ndef f(g, w):\n    return functools.wraps(w, assigned=('x',))(g)\n",
     "functools.wraps other than as @functools.wraps(f)"),
    ("from functools import wraps as w\nimport functools\nf = functools.partial(w, updated=())\n",
     "functools.wraps other than as @functools.wraps(f)"),
    ("class G:\n    def __getattribute__(self, n):\n        return 1\n", "defining '__getattribute__'"),
    ("class G:\n    def __getstate__(self):\n        return {}\n", "defining '__getstate__'"),
    ("class G:\n    def __reduce__(self):\n        return (print, ())\n", "defining '__reduce__'"),
    ("def test_x():\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n        e.__traceback__\n",
     "dunder attribute '__traceback__'"),
    ("import pytest\ndef test_x():\n    with pytest.raises(ValueError) as e:\n        raise ValueError\n"
     "    e.tb\n", "access to attribute 'tb'"),
    ("import pytest\ndef test_x():\n    with pytest.raises(ValueError) as e:\n        raise ValueError\n"
     "    e.traceback[0].locals\n", "access to attribute 'traceback'"),
    ("def test_x(caplog):\n    caplog.records[0].exc_info\n", "access to attribute 'exc_info'"),
    ("import pytest\ndef test_x():\n    pytest.main(['-q'])\n", "use of 'pytest.main'"),
    ("from pytest import MonkeyPatch\n", "import of 'pytest.MonkeyPatch'"),
    ("import pytest\nP = pytest.ExceptionInfo\n", "use of 'pytest.ExceptionInfo'"),
    ("import pytest\ndef test_x():\n    pytest.mark._config\n", "private attribute '_config'"),
    ("import collections\nc = collections._sys\n", "private attribute '_sys'"),
    ("from uop_engine import plugins\nplugins.logging.makeLogRecord({})\n", "access to attribute 'logging'"),
    ("import uop_engine.plugins as p\nt = p.types\n", "use of 'uop_engine.plugins.types'"),
    ("from uop_engine.plugins import load_plugin_file\n", "it runs a file's code"),
    ("import numpy as np\nnp.testing.measure('x = 1')\n", "use of 'numpy.testing.measure' (it runs a string"),
    ("from numpy.testing import runstring\n", "import of 'numpy.testing.runstring'"),
    # 2. classes with attributes named by data (numpy's __array_interface__ reads any address)
    ("X = type('X', (), {})\n", "type() with more than one argument"),
    ("import abc\nX = abc.ABCMeta('X', (), {})\n", "use of 'abc.ABCMeta' other than as metaclass="),
    ("class M(type):\n    pass\n", "derives from a metaclass"),
    ("t = type\n", "the builtin 'type' other than as type(x)"),
    ("def f(x):\n    return type(x)('X', (), {})\n", "calling the class of an object with three arguments"),
    ("import enum\ndef f(n, d):\n    return enum.Enum('E', [(n, d)])\n", "functional Enum whose member names"),
    ("import enum\nclass E(enum.Enum):\n    pass\ndef f(n):\n    return E('F', n)\n", "functional Enum"),
    ("import dataclasses\nD = dataclasses.make_dataclass('D', [])\n", "access to attribute 'make_dataclass'"),
    ("d = {'__array_' + 'interface__': 1}\n", "string '__array_interface__'"),
    ("d = {'_' + '_array_interface_' + '_': 1}\n", "string '__array_interface__'"),
    ("n = '%sarray_interface%s' % ('_' * 2, '__')\n", "string '__array_interface__'"),
    ("n = '_'.join(['', 'array', ''])\nm = '_' * 2\n", "string '__'"),
    ("n = b'__array_interface__'\n", "string '__array_interface__'"),
    ("n = f'__{1}'\n", "string '__'"),
    ("def f(**k):\n    pass\nf(__array_interface__=1)\n", "keyword argument '__array_interface__'"),
    ("class A:\n    @property\n    def __array_interface__(self):\n        return {}\n",
     "defining '__array_interface__'"),
    ("class A:\n    __slots__ = (n,)\n", "use of '__slots__'"),
    ("from tinygrad import Tensor\nt = Tensor.from_blob(0, (8,))\n", "access to attribute 'from_blob'"),
    # 3. pytest evaluates string conditions of skipif/xfail
    ("import pytest\nsk = pytest.mark.skipif\n@sk('1')\ndef test_a():\n    pass\n",
     "pytest.mark.skipif used other than where it is called"),
    ("import pytest\nsk = pytest.mark.skipif\n@sk('1')\ndef test_a():\n    pass\n",
     "condition of pytest.mark.skipif that may be a string"),
    ("import pytest\nc = 'x' + '1'\n@pytest.mark.skipif(c, reason='r')\ndef test_a():\n    pass\n",
     "condition of pytest.mark.skipif that may be a string"),
    ("import pytest\n@pytest.mark.xfail(*['1'])\ndef test_a():\n    pass\n", "condition of pytest.mark.xfail"),
    ("from pytest import mark\n@mark.skipif(condition='1')\ndef test_a():\n    pass\n",
     "condition of pytest.mark.skipif"),
    ("import pytest\nm = pytest.mark.skipif.with_args('1')\n", "pytest.mark.skipif used other than"),
    ("import pytest\n@pytest.mark.filterwarnings('ignore::evil_mod.W')\ndef test_a():\n    pass\n",
     "warning category 'evil_mod.W'"),
    # 4. changing imported modules through an alias
    ("import numpy as np\nt = np.testing\nt.assert_allclose = lambda *a, **k: None\n",
     "changing attribute 'assert_allclose' of imported 'numpy.testing'"),
    ("import numpy as np\nt = u = np\nu.testing.assert_allclose = None\n", "changing attribute 'assert_allclose'"),
    ("import numpy as np\ndef f(t=np.testing):\n    t.assert_allclose = None\n", "changing attribute"),
    ("import numpy as np\nfor t in (np.testing,):\n    t.assert_allclose = None\n", "changing attribute"),
    ("import numpy as np\ndef f():\n    np.testing.assert_allclose = None\n", "changing attribute"),
    # 6. denied submodules however they are named
    ("from tinygrad import helpers\n", "import of 'tinygrad.helpers'"),
    ("from numpy import ctypeslib\n", "import of 'ctypeslib' from 'numpy'"),
    ("import numpy as np\np = np.ctypeslib.as_array\n", "access to attribute 'ctypeslib'"),
    ("import tinygrad\nh = tinygrad.helpers\n", "use of 'tinygrad.helpers'"),
    # builtins the rules rely on may not be rebound
    ("bool = str\n", "rebinding the builtin 'bool'"),
    ("def f(type):\n    pass\n", "parameter named like the builtin 'type'"),
])
def test_screen_refuses_the_review_routes(code, what):
    found = _problems(code)
    assert any(what in p for p in found), found


def test_reviewer_forged_pass_is_refused_whole():
    """x1 of the review: the frame walk to pytest's config and a plugin that flips outcomes."""
    test = ('import pytest, functools\nfrom my_block import get\ndef frames():\n    try:\n        1 / 0\n'
            '    except ZeroDivisionError as e:\n        err = e\n'
            '    f = get(get(err, "__trace" + "back__"), "tb_frame")\n    while f is not None:\n        yield f\n'
            '        f = get(f, "f_back")\ndef fix(report):\n    report.outcome = "passed"\n'
            'P = type("P", (), {"pytest_runtest_logreport": staticmethod(pytest.hookimpl(tryfirst=True)(fix))})\n'
            'def test_block_is_right():\n    assert 1 + 1 == 3\n')
    found = screen_files({"my_block.py": GET, "test_my_block.py": test})
    for what in ("access to attribute 'update_wrapper'", "defining '__setattr__'", "string '__trace'",
                 "string 'back__'", "type() with more than one argument", "use of 'pytest.hookimpl'"):
        assert any(what in p for p in found), (what, found)


@pytest.mark.parametrize("code", [
    "class B:\n    __slots__ = ('a', 'b')\n    def __init__(self):\n        self.a = 1\n",
    "class B:\n    __hash__ = None\n",
    "if __name__ == '__main__':\n    pass\n",
    "class B:\n    def __init__(self):\n        self.__cache = {}\n    def get(self, k):\n"
    "        return self.__cache.get(k)\n",
    "class B:\n    def __init__(self, w):\n        self._w = w\n    def _scale(self):\n        return self._w * 2\n"
    "    def get(self):\n        return self._scale()\n",
    "class A:\n    def __init__(self):\n        self._w = 1\nclass B(A):\n    def get(self):\n        return self._w\n",
    "class Seq:\n    def __init__(self, *m):\n        self.modules = list(m)\n    def first(self):\n"
    "        return self.modules[0]\n",
    "class F:\n    def __init__(self, s):\n        self.signal = s\n        self.hook = None\n        self.io = 3\n",
    "class V:\n    def __getitem__(self, i):\n        return i\n    def __matmul__(self, o):\n        return o\n"
    "    def get(self, i):\n        return self.__getitem__(i)\n    def __exit__(self, *a):\n        return None\n",
    "import functools\ndef deco(f):\n    @functools.wraps(f)\n    def g(*a):\n        return f(*a)\n    return g\n",
    "from functools import wraps\ndef deco(f):\n    @wraps(f)\n    def g(*a):\n        return f(*a)\n    return g\n",
    "def f(x):\n    return type(x).__name__, isinstance(x, type), isinstance(x, (int, type))\n",
    "def f(self, a, b):\n    return type(self)(a, b)\n",
    "import abc\nclass B(abc.ABC):\n    @abc.abstractmethod\n    def f(self):\n        pass\n"
    "class C(metaclass=abc.ABCMeta):\n    pass\n",
    "import enum\nclass Color(enum.Enum):\n    RED = 1\nE = enum.Enum('E', 'x y')\nF = enum.Enum('F', [('a', 1)])\n"
    "c = Color(1)\n",
    "import pytest\n@pytest.mark.skipif(not True, reason='r')\n@pytest.mark.xfail\ndef test_a():\n    pass\n"
    "@pytest.mark.skipif(bool(0), reason='r')\n@pytest.mark.xfail(raises=ValueError, strict=True)\ndef test_b():\n"
    "    raise ValueError\n@pytest.mark.parametrize('n', [1, pytest.param(2, marks=pytest.mark.xfail)])\n"
    "def test_c(n):\n    pass\n",
    "import pytest\npytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')\n"
    "def test_a():\n    with pytest.raises(ValueError, match='x') as e:\n        raise ValueError('x')\n"
    "    assert e.value.args and e.type is ValueError\n    pytest.approx(1.0) == 1.0\n",
    "import numpy as np\nrng = np.random.default_rng(0)\nx = rng.normal(size=3)\n"
    "np.testing.assert_allclose(x, x)\ny = np.lib.stride_tricks.sliding_window_view(np.arange(5), 2)\n",
    "def f(d):\n    return '{0[_x]}'.format(d) + '{\"a\": [_1]}' + 'a __b__ c'\n",
    "from tinygrad.nn import Linear\nfrom tinygrad.nn.state import get_parameters\nfrom tinygrad import Tensor\n"
    "def test_a():\n    m = Linear(2, 3)\n    m.weight.requires_grad = True\n",
    "import dataclasses\n@dataclasses.dataclass\nclass C:\n    xs: list = dataclasses.field(default_factory=list)\n",
])
def test_legitimate_patterns_pass(code):
    assert screen_source(code) == []


def test_private_names_on_self_need_to_be_the_classs_own_and_unknown_to_the_libraries():
    # Block.get(collections) would read collections._sys: names the libraries use stay refused
    p = screen_source("class B:\n    def __init__(self):\n        self._sys = 1\n    def get(self):\n"
                      "        return self._sys\n")
    assert "access to '_sys' on self: '_sys' is also a private name in the libraries" in p[0]
    p = screen_source("class B:\n    def get(self):\n        return self._w\n")
    assert "class 'B' does not set '_w' itself" in p[0]
    p = screen_source("class B:\n    def __init__(self):\n        self._w = 1\n    def get(self, o):\n"
                      "        return o._w\n")
    assert p == ["<generated>:5: access to private attribute '_w' (names starting with '_' are refused: use the "
                 "public API)"]
    rebound = screen_source("class B:\n    def __init__(self):\n        self._w = 1\n    def get(self, o):\n"
                            "        self = o\n        return self._w\n")
    assert any("private attribute '_w'" in x for x in rebound)
    static = screen_source("class B:\n    _w = 1\n    @staticmethod\n    def get(self):\n        return self._w\n")
    assert any("private attribute '_w'" in x for x in static)


def test_string_folding():
    import ast
    e = lambda s: ast.parse(s, mode="eval").body  # noqa: E731
    assert fold_str(e("'__array_' + 'interface__'")) == "__array_interface__"
    assert fold_str(e("'_' * 2 + 'x'")) == "__x"
    assert fold_str(e("'%s%s' % ('a', 'b')")) == "ab"
    assert fold_str(e("f'a{\"b\"}c'")) == "abc"
    assert fold_str(e("'-'.join(['a', 'b'])")) == "a-b"
    assert fold_str(e("'a' + x")) is None
