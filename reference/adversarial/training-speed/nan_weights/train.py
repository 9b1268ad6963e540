import cheat_loop

seed, output, device, size = cheat_loop.settings()
flat = cheat_loop.train(seed, size, device)
flat[0] = float("nan")
cheat_loop.write(flat, output)
