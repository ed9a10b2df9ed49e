"""``python -m trails.refinement.service``: run the refinement service (see :mod:`.cli`)."""

from trails.refinement.service.cli import main

if __name__ == "__main__":
    main()
