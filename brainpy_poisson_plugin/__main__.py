"""``python -m brainpy_poisson_plugin doctor`` (same as the ``brainpy-poisson`` command)."""

if __name__ == "__main__":
    from brainpy_poisson_plugin.cli import main

    raise SystemExit(main())
