"""File formats the dataset releases use, read (and, for tests, written) without any dataset knowledge:
``safe_pickle`` (restricted unpickling: numpy arrays only, nothing executed), ``legacy_pickle``
(Python-2 numpy pickles, as DEAP ships), ``edf`` (EDF/EDF+, as EEGMMIDB ships), ``cnt`` (Neuroscan continuous, as SEED-V ships its raw EEG)."""
