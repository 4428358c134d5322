"""Linen modules: recurrent mixers: LSTM, GRU, minGRU/minLSTM, EGRU."""
