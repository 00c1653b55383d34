import gc
import os
import sys

from .cli import main

if __name__ == "__main__":
    try:
        code = main(own_process=True)
        sys.stdout.flush()
    except BrokenPipeError:  # stdout closed by its reader (`| head`): stop quietly, as a shell tool does
        # (what was written is written: each figure's files are complete before its summary is printed)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at the final flush
        code = 1
    # The process ends here: freezing the live objects (torch's alone are ~0.3 s of collection) spares the
    # interpreter's final garbage-collection passes over them. Results are already written and closed.
    gc.freeze()
    sys.exit(code)
