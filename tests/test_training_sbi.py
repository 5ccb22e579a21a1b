import numpy as np
import pytest

from training.sbi import blend_images, choose_donor, hull_mask, self_blend, similarity_transform
from training.synthetic import synthetic_face


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_face(160, seed=1)


def test_self_blend_returns_uint8_fake_and_nontrivial_float_mask(face: tuple[np.ndarray, np.ndarray]) -> None:
    image, landmarks = face
    for seed in range(4):
        fake, mask = self_blend(image, landmarks, np.random.default_rng(seed))
        assert fake.shape == image.shape and fake.dtype == np.uint8
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask.max() >= 0.25 - 1e-6  # the smallest blend ratio
        assert 0.05 < (mask > 0.01).mean() < 0.95  # a face-sized region, not all or nothing
        assert mask[0, 0] == 0.0 and mask[80, 80] > 0.2  # outside the face vs its centre
        inside = mask > 0.2
        assert np.abs(fake.astype(int) - image)[inside].mean() > 0.5  # the source really differs


def test_self_blend_is_deterministic_given_a_seed(face: tuple[np.ndarray, np.ndarray]) -> None:
    image, landmarks = face
    a = self_blend(image, landmarks, np.random.default_rng(7))
    b = self_blend(image, landmarks, np.random.default_rng(7))
    c = self_blend(image, landmarks, np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_blended_image_takes_the_donor_face_inside_the_mask() -> None:
    target, target_lm = synthetic_face(160, seed=2)
    donor, donor_lm = synthetic_face(200, seed=3)  # another identity, another crop size
    fake, mask = blend_images(target, target_lm, donor, donor_lm, np.random.default_rng(1))
    assert fake.shape == target.shape and fake.dtype == np.uint8 and mask.dtype == np.float32
    assert mask.min() >= 0 and mask.max() <= 1 and mask.max() >= 0.25 - 1e-6
    inside, outside = mask > 0.9, mask == 0
    assert inside.any()  # seed 1 draws a full blend: the donor's face where the mask is 1, the target elsewhere
    assert np.abs(fake.astype(int) - target)[inside].mean() > 3
    assert np.abs(fake.astype(int) - target)[outside].max() <= 1
    again = blend_images(target, target_lm, donor, donor_lm, np.random.default_rng(1))
    assert np.array_equal(fake, again[0]) and np.array_equal(mask, again[1])


def test_choose_donor_never_picks_the_same_identity() -> None:
    identities = ["a", "a", "b", "a", "c"]
    picks = {choose_donor(identities, "a", np.random.default_rng(seed)) for seed in range(50)}
    assert picks == {2, 4}
    with pytest.raises(ValueError, match="second identity"):
        choose_donor(["a", "a"], "a", np.random.default_rng(0))


def test_similarity_transform_recovers_a_known_transform() -> None:
    src = np.random.default_rng(0).uniform(0, 100, (68, 2))
    angle, scale, shift = 0.3, 1.4, np.array([5.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(src, src @ rot.T + shift)
    assert np.allclose(matrix, np.hstack([rot, shift[:, None]]), atol=1e-9)


def test_hull_mask_covers_the_landmarks() -> None:
    _, landmarks = synthetic_face(160)
    mask = hull_mask(landmarks, (160, 160))
    assert set(np.unique(mask)) == {0.0, 1.0}
    x, y = np.round(landmarks.mean(0)).astype(int)
    assert mask[y, x] == 1.0 and mask[0, 0] == 0.0
