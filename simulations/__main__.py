import gc
import sys

from .cli import main

if __name__ == "__main__":
    code = main(own_process=True)
    # The process ends here: freezing the live objects (torch's alone are ~0.3 s of collection) spares the
    # interpreter's final garbage-collection passes over them. Results are already written and closed.
    gc.freeze()
    sys.exit(code)
