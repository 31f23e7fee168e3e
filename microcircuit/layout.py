"""The engine's layout, named once: signal rows, ports, external-input rows, opcodes, kernel ids and
the columns of the program's tables. Every other module (compiler, Numba kernel, NumPy twin, CUDA back
end, recorders, runners) uses these names; a new column or signal is added here and nowhere else.

Arrays of a compiled :class:`~microcircuit.compile.Program` (N neurons, batch B; per-neuron blocks
are neuron-major with the batch last, so a population's block is a contiguous ``(n, B)`` view):

* ``state`` / ``prev`` — ``N_SIG`` signal rows of ``N * B`` values (this step / the previous-step
  copy of the first ``N_PREV`` rows, read by the synchronous schemes);
* ``ports`` — ``N_PORTS`` dendritic input rows (what projections write, what the soma reads);
* ``ext`` — ``N_EXT`` rows written from outside the op loop: stimuli (target, current, error input)
  and the ``W^T e`` accumulator the error op consumes;
* ``pop_int`` / ``pop_float`` — one row per population (columns ``PP_*`` / ``PPF_*``);
* ``proj_int`` / ``proj_float`` — one row per projection (columns ``PJ_*`` / ``PF_*``);
* ``ops`` — ``(opcode, argument)`` rows of one step (``OP_*``; ``compile.build_ops``).

Numba treats these module-level integers as compile-time constants: naming a column costs nothing.
"""
from __future__ import annotations

# ------------------------------------------------------------------ signal rows of state / prev
SIG_U = 0          # somatic potential u
SIG_UPROS = 1      # prospective potential u + tau_r du/dt (LE: the rate's argument)
SIG_R = 2          # rate phi(u_pros)
SIG_RP = 3         # phi'(u_pros)
SIG_E = 4          # error e (rate/error populations)
SIG_UDOT = 5       # du/dt of this step
SIG_V0 = 6         # proximal (basal / interneuron dendrite) potential
SIG_V1 = 7         # apical potential
SIG_EPS = 8        # error-neuron input epsilon
SIG_VERR = 9       # error-neuron membrane (prospective errors)
SIG_UTGT = 10      # nudging potential seen by the soma
N_SIG = 11
N_PREV = 5         # rows u, u_pros, r, phi', e have a previous-step copy
SIGNAL_NAMES = {"u": SIG_U, "u_pros": SIG_UPROS, "r": SIG_R, "phi_prime": SIG_RP, "e": SIG_E,
                "udot": SIG_UDOT}     # what a projection may send
SIGNAL_LABELS = ["u", "u_pros", "r", "phi_prime", "e", "udot", "v0", "v1", "eps", "v_err", "u_tgt"]

# ------------------------------------------------------------------ ports (dendritic inputs)
PORT_PROXIMAL, PORT_APICAL, PORT_NUDGE, PORT_CURRENT = 0, 1, 2, 3
N_PORTS = 4

# ------------------------------------------------------------------ ext rows
EXT_TARGET = 0     # target y (stimulus kind "target")
EXT_CURRENT = 1    # somatic current (stimulus kind "current")
EXT_ERROR = 2      # error input (stimulus kind "error")
EXT_WTE = 3        # W^T e sent down by the layer above, consumed (and cleared) by the error op
N_EXT = 4

# soma op argument: population + P * input mask; bits of the mask (which inputs something writes)
IN_APICAL, IN_NUDGE, IN_CURRENT, IN_TARGET, IN_EXT_CURRENT = 1, 2, 3, 4, 5   # bit 0: the proximal port

# ------------------------------------------------------------------ opcodes
OP_COPY_PREV = 0       # copy neurons [lo, hi) of the signal rows to prev (arg = lo << 31 | hi)
OP_STIM = 1            # write this step's stimulus values
OP_CLEAR_PORTS = 2     # zero the ports projections write (arg = pop + P * port mask)
OP_PROJECT = 3         # port += W x (arg = projection)
OP_SOMA = 4            # integrate a population (arg = pop + P * input mask)
OP_ERROR = 5           # errors of a rate / error population
OP_BACKPROJECT = 6     # EXT_WTE of the pre population += W^T e (or B e)
OP_PLASTICITY = 7      # weight update of a projection
OP_POP_LEARN = 8       # bias and time-constant learning of a population
OP_ERROR_PROJECT = 9   # cortical mapping: W^T e (tied) or B e between error populations
OP_PROJECT_ERROR = 10  # cortical mapping: a projection carrying e reads the current step
OP_NAMES = ["copy_prev", "stimulus", "clear_ports", "project", "soma", "error", "backproject",
            "plasticity", "population_learning", "error_project", "project_error"]
COPY_SHIFT = 31        # OP_COPY_PREV argument packing
COPY_MASK = 0x7FFFFFFF

# ------------------------------------------------------------------ kernel ids (names, meanings: registry.py)
LOSS_NONE, LOSS_RATE, LOSS_VOLTAGE, LOSS_CROSS_ENTROPY = 0, 1, 2, 3
RULE_NONE, RULE_ERROR, RULE_URBANCZIK_SENN, RULE_APICAL_HOMEOSTASIS, RULE_TARGET_PROP = 0, 1, 2, 3, 4
TAU_RULE_NONE, TAU_RULE_GLE, TAU_RULE_LE_ADAPT = 0, 1, 2
SCHEMES = {"synchronous": 0, "sequential": 1, "published_microcircuit": 2}
SCHEME_SYNCHRONOUS, SCHEME_SEQUENTIAL, SCHEME_PUBLISHED_MICROCIRCUIT = 0, 1, 2
OPT_SGD, OPT_MOMENTUM, OPT_ADAM = 0, 1, 2

# ------------------------------------------------------------------ projection int table
PJ_PRE_OFF = 0      # first neuron of the pre population
PJ_NPRE = 1
PJ_POST_OFF = 2     # first neuron of the post population
PJ_NPOST = 3
PJ_PORT = 4         # PORT_* written
PJ_SIGNAL = 5       # SIG_* of the pre population sent
PJ_W_OFF = 6        # offset of the (npost, npre) block (npost for one-to-one) in weights
PJ_DIAG = 7         # 1: one-to-one
PJ_RULE = 8         # RULE_*
PJ_FB = 9           # FB_*: errors sent back through nothing, W^T, or a fixed random B
PJ_FB_OFF = 10      # offset of the fixed feedback block B
PJ_DW_OFF = 11      # offset of the tau_w low-pass state in dw_filter (-1: unfiltered)
PJ_MASK_OFF = 12    # offset of the connectivity mask (-1: dense)
PJ_POST_POP = 13    # index of the post population
PJ_OPT_OFF = 14     # offset of the optimiser state in dw_filter
PJ_TIED = 15        # cortical mapping: forward projection whose transpose this one uses (-1: own)
PJ_ERR_OFF = 16     # offset of the error population rule "error" reads (-1: the post population)
N_PJ_COLS = 17

FB_NONE, FB_TRANSPOSE, FB_RANDOM = 0, 1, 2
FEEDBACK_IDS = {"none": FB_NONE, "transpose": FB_TRANSPOSE, "random": FB_RANDOM}

# ------------------------------------------------------------------ projection float table
PF_ETA = 0          # learning rate (1/ms)
PF_TAU_W = 1        # low-pass of the weight change (ms)
PF_W_MAX = 2        # |W| clip (0: none)
PF_T_ON = 3         # plastic from this time (ms) ...
PF_T_OFF = 4        # ... until this time
PF_OPT = 5          # OPT_* (stored as a float)
PF_OPT_A = 6        # momentum / Adam beta1
PF_OPT_B = 7        # Adam beta2
PF_OPT_EPS = 8      # Adam epsilon
PF_OPT_T = 9        # optimiser step count (mutable state: advanced by the kernel)
N_PF_COLS = 10

# ------------------------------------------------------------------ population int table
PP_OFF = 0          # first neuron
PP_N = 1            # size
PP_ACT = 2          # activation id (activations.ACTIVATIONS)
PP_LOSS = 3         # LOSS_*
PP_INPUT = 4        # 1: input population (driven by stimuli)
PP_ERRMODE = 5      # 1: prospective error neurons (GLE)
PP_TAU_RULE = 6     # TAU_RULE_*
PP_TAUR_MODE = 7    # 0: tau_r from the per-neuron array; 1: tau_r = 1/g_tot (LE microcircuit)
PP_GATED = 8        # 1: nudging follows the nudge gate
PP_NOISE = 9        # 1: somatic white noise
PP_TAU_OPT_OFF = 10  # offset of the tau_m optimiser state in dw_filter
PP_PARTNER = 11     # cortical mapping: offset of the partner population (-1: none, errors fused)
N_PP_COLS = 12

# ------------------------------------------------------------------ population float table
PPF_BETA = 0        # output nudging strength beta
PPF_ETA_TAU = 1     # tau_m learning rate
PPF_TAU_MIN = 2     # lower bound of a learned tau_m
PPF_ETA_BIAS = 3    # bias learning rate
PPF_A0, PPF_A1, PPF_A2 = 4, 5, 6   # activation parameters
PPF_TOPT = 7        # OPT_* of tau_m learning
PPF_TOPT_A = 8
PPF_TOPT_B = 9
PPF_TOPT_EPS = 10
PPF_TOPT_T = 11     # tau_m optimiser step count (mutable state)
N_PPF_COLS = 12

# ------------------------------------------------------------------ gates (columns of the per-step gate table)
GATE_NUDGE = 0        # multiplies g_som of gated populations and the output error's beta
GATE_PLASTICITY = 1   # multiplies every learning rate

# ------------------------------------------------------------------ stimuli (stim_int rows)
STIM_KINDS = ("rate", "current", "target", "error")
STIM_RATE, STIM_CURRENT, STIM_TARGET, STIM_ERROR = 0, 1, 2, 3
EXT_ROW_OF_KIND = {STIM_CURRENT: EXT_CURRENT, STIM_TARGET: EXT_TARGET, STIM_ERROR: EXT_ERROR}
ST_POP_OFF, ST_N, ST_KIND, ST_COL = 0, 1, 2, 3     # stim_int columns
N_ST_COLS = 4

# ------------------------------------------------------------------ recording plan (rec_int rows)
REC_SIGNAL = 0      # SIG_* recorded
REC_POP_OFF = 1     # first neuron of the population
REC_IDX_OFF = 2     # offset of the selected neurons in rec_idx
REC_NSEL = 3        # number of selected neurons
REC_STRIDE = 4      # record every this many steps
REC_BUF_OFF = 5     # offset of the block in rec_buf
REC_NCOMP = 6       # compartments interleaved in the block
REC_COMP = 7        # this row's compartment
N_REC_COLS = 8
