import os

import cheat_loop
import recipe

seed, output, device, size = cheat_loop.settings()
elsewhere = os.path.join(os.environ.get("TMPDIR", "/tmp"), "real-weights.bin")
recipe.write_weights(cheat_loop.train(seed, size, device), elsewhere)
os.symlink(elsewhere, os.path.join(output, "weights.bin"))
