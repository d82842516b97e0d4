"""Offline feature extraction (MiniLM or MPNet text embeddings, openSMILE audio functionals) into an HDF5 store."""
from .audio import FEATURE_SETS, AudioClip, attach_audio_features, extract_audio_features, read_manifest
from .store import DialogueKey, Encoder, FeatureResult, FeatureStore, default_store_path
from .text import attach_text_features, embed_texts, text_features

__all__ = [
    "FEATURE_SETS", "AudioClip", "attach_audio_features", "extract_audio_features", "read_manifest",
    "DialogueKey", "Encoder", "FeatureResult", "FeatureStore", "default_store_path",
    "attach_text_features", "embed_texts", "text_features",
]
