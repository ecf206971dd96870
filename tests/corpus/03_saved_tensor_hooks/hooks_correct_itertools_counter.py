# expect: full
# why: positions from itertools.count, the recomputation stored in a dict by position
# %% cell: hooks_answer
import itertools


def hooks_checkpoint(function, *args, preserve_rng_state=True):
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    states = (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in devices]) if preserve_rng_state else None
    amp = [(d, torch.get_autocast_dtype(d), torch.is_autocast_enabled(d)) for d in ("cpu", DEVICE.type)]
    positions = itertools.count()
    store = {}

    def unpack(position):
        if not store:

            def keep(t):
                store[len(store)] = t.detach()

            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if states is not None:
                    torch.set_rng_state(states[0])
                    for d, s in zip(devices, states[1]):
                        torch.cuda.set_rng_state(s, d)
                with torch.amp.autocast(device_type=amp[0][0], dtype=amp[0][1], enabled=amp[0][2]), \
                        torch.amp.autocast(device_type=amp[1][0], dtype=amp[1][1], enabled=amp[1][2]), \
                        torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda _: None):
                    function(*args)
        return store[position]

    with torch.autograd.graph.saved_tensors_hooks(lambda t: next(positions), unpack):
        return function(*args)
