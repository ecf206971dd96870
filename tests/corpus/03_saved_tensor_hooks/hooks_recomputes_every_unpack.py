# expect: fails test_hooks_memory
# why: recomputes the whole function at every unpack: right values, one extra forward per saved tensor
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    amp_state = {d: (torch.get_autocast_dtype(d), torch.is_autocast_enabled(d)) for d in ("cpu", DEVICE.type)}
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    cpu_state = torch.get_rng_state()
    cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    counter = [0]

    def pack(tensor):
        counter[0] += 1
        return counter[0] - 1

    def unpack(position):
        recomputed = []
        with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
            if preserve_rng_state:
                torch.set_rng_state(cpu_state)
                for device, state in zip(devices, cuda_states):
                    torch.cuda.set_rng_state(state, device)
            with torch.autocast("cpu", *amp_state["cpu"]), torch.autocast(DEVICE.type, *amp_state[DEVICE.type]), \
                    torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(
                    lambda t: recomputed.append(t.detach()), lambda _: None):
                function(*args)
        return recomputed[position]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
