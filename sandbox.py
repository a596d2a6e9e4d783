"""Entry point of sandbox (the frozen binary's too): nothing but main()."""
import gc

gc.disable()        # helpers.collect_garbage_from_now_on() says why and until when
from helpers.cli import main_and_exit  # noqa: E402

if __name__ == "__main__":
    main_and_exit()
