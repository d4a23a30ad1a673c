"""Allow `python -m digest`.

The CLI is imported only when run: worker processes, which are spawned, import
this module as their parent's main module and need none of it.
"""

if __name__ == "__main__":
    from digest.cli import main

    main()
