# expect: full
# why: a correct variant as a class: the hooks are methods of one recomputation object per call
# %% cell: hooks_answer
class _Recompute:
    def __init__(self, function, args, preserve_rng_state):
        self.function, self.args, self.preserve = function, args, preserve_rng_state
        self.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            self.cpu_state = torch.get_rng_state()
            self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.devices]
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
                with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(
                        lambda t: tensors.append(t.detach()), lambda _: None):
                    self.function(*self.args)
            self.tensors = tensors
        return self.tensors[index]


def hooks_checkpoint(function, *args, preserve_rng_state=True):
    r = _Recompute(function, args, preserve_rng_state)
    with torch.autograd.graph.saved_tensors_hooks(r.pack, r.unpack):
        return function(*args)
