"""Aligned face crops from the 5 landmarks, as face recognition models expect them.

The similarity transform (rotation, uniform scale, translation) that maps the landmarks onto
the standard 112x112 template of ArcFace / InsightFace in the least-squares sense (Umeyama's
method, what ``skimage.transform.SimilarityTransform.estimate`` computes).
"""
from __future__ import annotations

import numpy as np

# left eye, right eye, nose, left and right mouth corner in a 112x112 crop (InsightFace)
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) matrix M of the similarity transform minimising sum |M [src 1] - dst|^2."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``image`` with the face's 5 landmarks on the template."""
    import cv2
    m = similarity_transform(landmarks, ARCFACE_112 * (size / 112.0))
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
