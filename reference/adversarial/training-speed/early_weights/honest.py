import cheat_loop

seed, output, device, size = cheat_loop.settings()
cheat_loop.write(cheat_loop.train(seed, size, device), output)
