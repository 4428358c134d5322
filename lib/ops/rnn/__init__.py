"""Recurrent cells: LSTM, GRU, minGRU/minLSTM, EGRU."""
