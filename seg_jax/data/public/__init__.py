"""Public person data through TFDS's own builders: COCO 2017 panoptic people (+ person-free negatives), DAVIS 2017
person tracks, YouTube-VIS person tracks and the paper's Kaggle set.

``python -m seg_jax.data.prepare NAME`` downloads and builds a dataset (TensorFlow is needed to *build* the
upstream builders: ``pip install 'seg_jax[prepare]'``); training reads the built ArrayRecord files without
TensorFlow. Modules: ``store`` (where a dataset lives, is it ready, raw random access), one module per dataset
(``coco``, ``davis17``, ``youtube_vis``), ``sources`` (config -> weighted sources). The datasets' facts (builder,
version, disk, licence, manual files) are data: ``datasets.json``; DAVIS's person object ids:
``davis_person_ids.json``.
"""
