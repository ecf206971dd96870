"""`python -m labs.nbgrader_cli ARGS` is `python -m nbgrader ARGS`, about 2 s faster to start.

nbformat imports jsonschema's format checkers, and jsonschema imports `rfc3987_syntax` when it
is installed (jupyter-events pulls it in), which compiles some forty Lark grammars at import:
about 1.5-2 s of CPU in every process that reads a notebook. It only adds the "iri" format
check, which no notebook schema uses, and jsonschema treats the module as optional
(`suppress(ImportError)`), so grading processes opt out with `labs.skip_slow_imports()`.
"""

from labs import skip_slow_imports

skip_slow_imports()

from nbgrader.apps.nbgraderapp import main  # noqa: E402

if __name__ == "__main__":
    main()
