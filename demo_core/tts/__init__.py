"""Speech synthesis: English text -> ARPAbet phones -> log-mel spectrogram -> audio.

``phonetize`` (text checks, CMUdict, the pronunciation model), ``audio`` (STFT, log-mel,
Griffin-Lim), ``dataset`` (espeak-ng data generator), ``model`` (small Tacotron 2 with
location-sensitive attention), ``train``, ``evaluate`` and ``synthesize`` (``Synthesizer``).
"""
