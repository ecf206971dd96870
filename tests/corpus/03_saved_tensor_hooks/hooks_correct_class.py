# expect: full
# why: a correct variant as a class: the hooks are methods of one recomputation object per call, the
#   forward's autocast state kept in a dict per device type and replayed with an ExitStack
# %% cell: hooks_answer
import contextlib


class _Recompute:
    def __init__(self, function, args, preserve_rng_state):
        self.function, self.args, self.preserve = function, args, preserve_rng_state
        self.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            self.cpu_state = torch.get_rng_state()
            self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.devices]
        self.autocast = {d: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d)) for d in {"cpu", DEVICE.type}}
        self.count = 0
        self.tensors = None

    def pack(self, tensor):
        self.count += 1
        return self.count - 1

    def unpack(self, index):
        if self.tensors is None:
            tensors = []
            with torch.random.fork_rng(devices=self.devices, enabled=self.preserve):
                if self.preserve:
                    torch.set_rng_state(self.cpu_state)
                    for d, s in zip(self.devices, self.cuda_states):
                        torch.cuda.set_rng_state(s, d)
                with contextlib.ExitStack() as stack:
                    for device_type, (enabled, dtype) in self.autocast.items():
                        stack.enter_context(torch.autocast(device_type, dtype=dtype, enabled=enabled))
                    stack.enter_context(torch.enable_grad())
                    stack.enter_context(torch.autograd.graph.saved_tensors_hooks(
                        lambda t: tensors.append(t.detach()), lambda _: None))
                    self.function(*self.args)
            self.tensors = tensors
        return self.tensors[index]


def hooks_checkpoint(function, *args, preserve_rng_state=True):
    r = _Recompute(function, args, preserve_rng_state)
    with torch.autograd.graph.saved_tensors_hooks(r.pack, r.unpack):
        return function(*args)
