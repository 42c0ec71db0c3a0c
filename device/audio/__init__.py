"""Voice calls ("Mời số 0123 đến quầy số 2") assembled from small WAV clips, or a chime."""
