"""The kernel's vectorised softplus/sigmoid (``activations.phi_dphi_vector``) against NumPy.

The exponential and log1p are written out (Cody-Waite reduction + Taylor/atanh series) so that LLVM
can vectorise them; their error bounds are stated in units in the last place (ulp) of NumPy's result:
e^{-a} <= 1 ulp (Taylor series to r^13 with |r| <= ln2/2 truncates below 1e-17, the rest is rounding),
log1p(z) <= 2 ulp (atanh series to s^21, |s| <= 0.172). The activations built from them stay within
a few ulp, which is what lets the engine keep its 1e-12 agreement with the NumPy reference stepper.
"""
import numpy as np
from numba import njit

from microcircuit.activations import (_exp_neg, _log1p_unit, phi_dphi_vector, phi_np, dphi_np, activation_id,
                                      DEFAULT_PARAMS, VECTOR_KINDS, is_vector_kind, padded_length)


@njit(error_model="numpy")
def _map(f, a):
    out = np.empty_like(a)
    for k in range(a.size):
        out[k] = f(a[k])
    return out


def _ulp(got, ref):
    return np.max(np.abs(got - ref) / np.spacing(np.abs(ref)))


def test_exp_neg_within_one_ulp_over_the_normal_range():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0, 1, 200000), rng.uniform(0, 60, 200000), rng.uniform(0, 1e-9, 10000),
                        rng.uniform(600, 708, 10000), [0.0, 0.5 * np.log(2), np.log(2), 1.0, 708.0]])
    assert _ulp(_map(_exp_neg, a), np.exp(-a)) <= 1.0
    assert _map(_exp_neg, np.array([0.0]))[0] == 1.0


def test_log1p_within_two_ulp_on_the_unit_interval():
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.uniform(0, 1, 200000), rng.uniform(0, 1e-8, 10000), np.exp(-rng.uniform(0, 700, 10000)),
                        [1.0, np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 1), np.nextafter(np.sqrt(2) - 1, 0)]])
    assert _ulp(_map(_log1p_unit, z[z > 0]), np.log1p(z[z > 0])) <= 2.0
    assert _map(_log1p_unit, np.array([0.0]))[0] == 0.0


def test_vector_activations_equal_numpy_to_a_few_ulp():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 4, 4000), rng.uniform(-40, 40, 4000), [0.0, -0.0, 1e-300, -745.0, 745.0]])
    m = padded_length(x.size)
    xs = np.full(m, np.nan)      # the padding is overwritten with zeros by phi_dphi_vector
    xs[:x.size] = x
    for name in ("logistic", "softplus", "soft_rectifier"):
        kind = activation_id(name)
        assert kind in VECTOR_KINDS and is_vector_kind(kind)
        p = DEFAULT_PARAMS.get(name, (0.0, 0.0, 0.0))
        r, rp = np.empty(m), np.empty(m)
        phi_dphi_vector(xs, x.size, kind, p[0], p[1], p[2], r, rp)
        ref_r, ref_rp = phi_np(x, kind, p), dphi_np(x, kind, p)
        # phi: a few ulp (rtol 1.6e-15), plus an absolute floor where the result underflows (e^{-745} ~ 5e-324;
        # the exponential is clamped at e^{-708})
        np.testing.assert_allclose(r[:x.size], ref_r, rtol=1.6e-15, atol=1e-300)
        # phi' of the logistic is s (1 - s): the cancellation in 1 - s turns one ulp of s into an absolute
        # error of one ulp of 1 (2.2e-16) in both implementations
        np.testing.assert_allclose(rp[:x.size], ref_rp, rtol=1.6e-15, atol=2.3e-16)
