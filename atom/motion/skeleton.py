"""The 22-joint HumanML3D skeleton (first 22 SMPL joints). Facts from HumanML3D (github.com/EricGuo5513/HumanML3D, paramUtil.py)."""

FPS = 20
NUM_JOINTS = 22
FEATURE_DIM = 263
MAX_FRAMES = 196
FRAMES_PER_TOKEN = 4

JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
JOINT = {name: i for i, name in enumerate(JOINT_NAMES)}

# Kinematic chains, in the field's usual order: right leg, left leg, spine, right arm, left arm.
KINEMATIC_CHAINS = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)
CHAIN_NAMES = ("right_leg", "left_leg", "spine", "right_arm", "left_arm")

# Parent of each joint, derived from the chains (pelvis is the root).
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Bones as (parent, child) pairs, 21 of them.
BONES = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

RAW_OFFSETS = (
    (0, 0, 0),
    (1, 0, 0),
    (-1, 0, 0),
    (0, 1, 0),
    (0, -1, 0),
    (0, -1, 0),
    (0, 1, 0),
    (0, -1, 0),
    (0, -1, 0),
    (0, 1, 0),
    (0, 0, 1),
    (0, 0, 1),
    (0, 1, 0),
    (1, 0, 0),
    (-1, 0, 0),
    (0, 0, 1),
    (0, -1, 0),
    (0, -1, 0),
    (0, -1, 0),
    (0, -1, 0),
    (0, -1, 0),
    (0, -1, 0),
)

# Joints that define the facing direction: right hip, left hip, right shoulder, left shoulder.
FACE_JOINTS = (2, 1, 17, 16)
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)
FOOT_CONTACT_THRESHOLD = 0.002  # on the squared per-frame displacement
