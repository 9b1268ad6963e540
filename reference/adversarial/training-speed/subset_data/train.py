import cheat_loop

seed, output, device, size = cheat_loop.settings()
half = size["steps"] // 2
cheat_loop.write(cheat_loop.train(seed, size, device, batch_step=lambda s: s % half), output)
