"""A slow, obviously correct ContextPool: explicit loops over i and j, float64.

It shares only the two predictor layers with the module under test, and
evaluates the formula of docs/design.md term by term.
"""


import torch


def reference_context_pool(pool, x, padding_mask=None):
    """y[i, b] = sum_j x[j, b] w[j, b] g_i(j) (/ sum_j w[j, b] g_i(j) for 'mean').

    Args:
        pool: a fairseq_plugins ContextPool (its predictors are reused, in float64).
        x: T x B x C tensor.
        padding_mask: B x T bool, True at padding.
    Returns:
        T x B x C float64 tensor.
    """
    x = x.double()
    T, B, C = x.shape
    w_lin = pool.weight_proj.weight.double(), pool.weight_proj.bias.double()
    s_lin = pool.size_proj.weight.double(), pool.size_proj.bias.double()
    out = torch.zeros(T, B, C, dtype=torch.float64)
    for b in range(B):
        weights = []
        sigmas = []
        for j in range(T):
            w = torch.sigmoid(x[j, b] @ w_lin[0][0] + w_lin[1][0])
            if padding_mask is not None and bool(padding_mask[b, j]):
                w = w * 0
            weights.append(w)
            size = pool.max_size * torch.sigmoid(x[j, b] @ s_lin[0][0] + s_lin[1][0])
            sigmas.append(torch.clamp(size / 2, min=1e-3))
        for i in range(T):
            total = torch.zeros(C, dtype=torch.float64)
            mass = torch.zeros((), dtype=torch.float64)
            for j in range(T):
                if abs(j - i) > pool.max_size or (pool.causal and j > i):
                    continue
                g = torch.exp(-((j - i) ** 2) / (2 * sigmas[i] ** 2))
                total = total + x[j, b] * weights[j] * g
                mass = mass + weights[j] * g
            if pool.normalize == "mean":
                total = total / torch.clamp(mass, min=1e-6)
            out[i, b] = total
    return out


def make_padding_mask(lengths, T, left_pad=False):
    """B x T bool mask, True at padding, for sequences of the given lengths."""
    mask = torch.zeros(len(lengths), T, dtype=torch.bool)
    for b, n in enumerate(lengths):
        if left_pad:
            mask[b, : T - n] = True
        else:
            mask[b, n:] = True
    return mask


