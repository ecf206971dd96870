# expect: fails test_hooks_memory test_hooks_grad_api test_hooks_double_backward
# why: reuses the reentrant CheckpointFunction: forward without grad, autograd.grad leaks into .grad, a frozen
#   input stops the parameters' gradients, and there is no second derivative
# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
